from __future__ import annotations

from django.contrib import admin

from webconsole.voicemail.models import Voicemail


@admin.register(Voicemail)
class VoicemailAdmin(admin.ModelAdmin):
    list_display = ("created", "caller", "callee", "duration_s", "handled")
    list_filter = ("handled", "callee")
    search_fields = ("caller", "callee", "transcript")
    readonly_fields = ("call", "hitl_request", "file", "t", "duration_s", "ended_by", "reason", "created")
