from __future__ import annotations

from django.apps import AppConfig


class VoicemailConfig(AppConfig):
    name = "webconsole.voicemail"
    label = "voicemail"
    verbose_name = "Voicemail"
    default_auto_field = "django.db.models.BigAutoField"
