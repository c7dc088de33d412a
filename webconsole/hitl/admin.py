from __future__ import annotations

from django.contrib import admin

from webconsole.hitl.models import HitlRequest


@admin.register(HitlRequest)
class HitlRequestAdmin(admin.ModelAdmin):
    list_display = ("request_id", "call", "reason", "status", "claimed_by", "created", "answered_at")
    list_filter = ("status", "reason")
    search_fields = ("request_id", "question", "call__call_id", "call__caller", "call__callee")
    raw_id_fields = ("call", "claimed_by", "saved_item")
    readonly_fields = ("created", "updated")
