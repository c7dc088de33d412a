from __future__ import annotations

from django.apps import AppConfig


class HitlConfig(AppConfig):
    name = "webconsole.hitl"
    label = "hitl"
    verbose_name = "Human in the loop"
    default_auto_field = "django.db.models.BigAutoField"
