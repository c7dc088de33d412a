from __future__ import annotations

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "webconsole.privacy"
    label = "privacy"
    verbose_name = "Privacy: retention, data-subject export and delete"
