"""Django admin for calls, their events and turns, extensions and operators."""

from __future__ import annotations

from django.contrib import admin

from webconsole.calls import actions
from webconsole.calls.extension_forms import AdminExtensionForm
from webconsole.calls.models import Call, Callback, CallEvent, Extension, ExtensionChange, Operator, Transfer, Turn


class ExtensionChangeInline(admin.TabularInline):
    model = ExtensionChange
    extra = 0
    fields = ("at", "user", "changes")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    """Saves go through ``actions.do_save_extension``: audited and published to the ARI app at once."""

    form = AdminExtensionForm
    list_display = ("number", "name", "ai_enabled", "no_answer_timeout", "language")
    search_fields = ("number", "name")
    fields = ("number", *actions.AUDITED, "sip_password")
    readonly_fields = ("sip_password",)
    inlines = [ExtensionChangeInline]

    def get_readonly_fields(self, request, obj=None):
        return ("number", "sip_password") if obj is not None else ("sip_password",)

    def save_model(self, request, obj, form, change) -> None:
        from webconsole.calls.extension_forms import new_sip_password

        values = {f: form.cleaned_data[f] for f in actions.AUDITED if f in form.cleaned_data}
        if not change:
            obj.sip_password = new_sip_password()  # a new extension: its phone registers with this
            actions.do_save_extension(request.user, obj, values, created=True)
            return
        # the form already copied its values onto obj: compare with the row as stored
        actions.do_save_extension(request.user, Extension.objects.get(pk=obj.pk), values)


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "extension", "status", "status_changed")
    list_filter = ("role", "status")
    filter_horizontal = ("extensions",)
    search_fields = ("user__username",)


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = ("t", "speaker", "text", "interrupted", "latency_ms")
    readonly_fields = fields
    can_delete = False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ("call_id", "caller", "callee", "state", "ai_handled", "started", "duration_s", "hitl_status")
    list_filter = ("state", "ai_handled", "hitl_status", "follow_up", "callee")
    search_fields = ("call_id", "caller", "callee")
    date_hierarchy = "started"
    readonly_fields = (
        "call_id",
        "caller",
        "callee",
        "state",
        "conversation_state",
        "ai_handled",
        "answered_by",
        "started",
        "answered",
        "ended",
        "duration_s",
        "billsec",
        "dial_status",
        "hangup_by",
        "termination_reason",
        "codec",
        "recording_dir",
    )
    inlines = [TurnInline]


@admin.register(CallEvent)
class CallEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "call", "type", "ts")
    list_filter = ("type",)
    search_fields = ("event_id", "call__call_id")
    readonly_fields = ("event_id", "call", "type", "ts", "data")


@admin.register(Callback)
class CallbackAdmin(admin.ModelAdmin):
    list_display = ("callback_id", "operator", "operator_ext", "number", "status", "reason", "created")
    list_filter = ("status",)
    search_fields = ("callback_id", "number", "operator_ext")
    readonly_fields = ("callback_id", "call", "operator", "operator_ext", "number", "status", "reason", "created")


@admin.register(Transfer)
class TransferAdmin(admin.ModelAdmin):
    """Calls put through to, or listened in on from, an operator's phone: read-only (the ARI app's events)."""

    list_display = ("transfer_id", "call", "mode", "operator", "operator_ext", "status", "reason", "created")
    list_filter = ("mode", "status")
    search_fields = ("transfer_id", "call__call_id", "operator_ext")
    readonly_fields = (
        "transfer_id",
        "call",
        "mode",
        "operator",
        "operator_ext",
        "status",
        "reason",
        "created",
        "connected",
        "ended",
    )
