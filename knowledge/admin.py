"""Admin pages for the knowledge base (review queue included: filter by status).

Item changes go through ``knowledge.actions`` so the admin keeps the history
and the vector index in step with PostgreSQL, exactly as the console does.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from knowledge.actions import (
    do_add_item,
    do_delete_item,
    do_edit_item,
    do_exclude_call,
    do_retry_extractions,
    do_set_learning_policy,
    do_set_status,
)
from knowledge.models import ExtractionRun, ImportJob, KnowledgeItem, KnowledgeVersion, LearningPolicy, Status


class KnowledgeVersionInline(admin.TabularInline):
    model = KnowledgeVersion
    extra = 0
    readonly_fields = ("version", "text", "category", "keywords", "edited_by", "created")
    can_delete = False


@admin.register(KnowledgeItem)
class KnowledgeItemAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "short_text", "category", "source", "status", "confidence", "version", "updated")
    list_filter = ("status", "category", "source", "owner")
    search_fields = ("text", "owner", "source_call_id")
    readonly_fields = (
        "version",
        "usage_count",
        "created",
        "updated",
        "source_call_id",
        "source_speaker",
        "source_span",
    )
    inlines = [KnowledgeVersionInline]
    actions = ["approve", "reject"]

    @admin.display(description="text")
    def short_text(self, obj: KnowledgeItem) -> str:
        return obj.text[:80]

    def get_readonly_fields(self, request: HttpRequest, obj: KnowledgeItem | None = None) -> Any:
        # Moving an item to another owner would need a move between index partitions: add a new one instead.
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "owner") if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: KnowledgeItem, form: ModelForm, change: bool) -> None:
        if not change:
            results = do_add_item(
                obj.owner,
                obj.text,
                category=obj.category,
                keywords=obj.keywords,
                source=obj.source,
                confidence=obj.confidence,
                status=obj.status,
                edited_by=request.user,
            )
            obj.pk = results[0].item.pk
            return
        changed = set(form.changed_data)
        if changed & {"text", "category", "keywords"}:
            do_edit_item(
                obj.pk,
                text=obj.text if "text" in changed else None,
                category=obj.category if "category" in changed else None,
                keywords=obj.keywords if "keywords" in changed else None,
                edited_by=request.user,
            )
        if "status" in changed:
            do_set_status(obj.pk, obj.status)
        if "confidence" in changed or "source" in changed:
            KnowledgeItem.objects.filter(pk=obj.pk).update(confidence=obj.confidence, source=obj.source)

    def delete_model(self, request: HttpRequest, obj: KnowledgeItem) -> None:
        do_delete_item(obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KnowledgeItem]) -> None:
        for pk in list(queryset.values_list("pk", flat=True)):
            do_delete_item(pk)

    @admin.action(description="Approve (add to the AI's knowledge)")
    def approve(self, request: HttpRequest, queryset: QuerySet[KnowledgeItem]) -> None:
        for pk in list(queryset.values_list("pk", flat=True)):
            do_set_status(pk, Status.APPROVED)
        self.message_user(request, "Approved.", messages.SUCCESS)

    @admin.action(description="Reject (remove from the AI's knowledge)")
    def reject(self, request: HttpRequest, queryset: QuerySet[KnowledgeItem]) -> None:
        for pk in list(queryset.values_list("pk", flat=True)):
            do_set_status(pk, Status.REJECTED)
        self.message_user(request, "Rejected.", messages.SUCCESS)


@admin.register(KnowledgeVersion)
class KnowledgeVersionAdmin(admin.ModelAdmin):
    list_display = ("item", "version", "category", "edited_by", "created")
    search_fields = ("text",)


@admin.register(ExtractionRun)
class ExtractionRunAdmin(admin.ModelAdmin):
    list_display = ("call_id", "owner", "status", "items_created", "reason", "created", "finished")
    list_filter = ("status",)
    search_fields = ("call_id", "reason", "error")
    actions = ["retry", "exclude_from_learning"]

    @admin.action(description="Exclude the selected calls from learning (their items go)")
    def exclude_from_learning(self, request: HttpRequest, queryset: QuerySet[ExtractionRun]) -> None:
        removed = sum(do_exclude_call(call_id) for call_id in list(queryset.values_list("call_id", flat=True)))
        self.message_user(request, f"Excluded; {removed} item(s) removed.", messages.SUCCESS)

    @admin.action(description="Run the selected failed extractions again")
    def retry(self, request: HttpRequest, queryset: QuerySet[ExtractionRun]) -> None:
        selected = list(queryset.values_list("call_id", flat=True))
        queued = do_retry_extractions(selected)
        if queued:
            self.message_user(
                request, f"Queued {len(queued)} extraction(s) again: {', '.join(queued)}.", messages.SUCCESS
            )
        skipped = len(selected) - len(queued)
        if skipped:
            self.message_user(
                request, f"{skipped} selected run(s) had not failed and were left alone.", messages.WARNING
            )


@admin.register(LearningPolicy)
class LearningPolicyAdmin(admin.ModelAdmin):
    list_display = ("owner", "learning", "auto_publish", "publish_threshold", "updated")
    list_editable = ("learning", "auto_publish", "publish_threshold")

    def save_model(self, request: HttpRequest, obj: LearningPolicy, form: ModelForm, change: bool) -> None:
        saved = do_set_learning_policy(
            obj.owner, learning=obj.learning, auto_publish=obj.auto_publish, publish_threshold=obj.publish_threshold
        )
        obj.pk = saved.pk


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("filename", "owner", "status", "done", "total", "created", "finished")
    list_filter = ("status",)
