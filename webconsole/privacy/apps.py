from __future__ import annotations

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "webconsole.privacy"
    label = "privacy"
    verbose_name = "Privacy: retention, data-subject export and delete"

    def ready(self) -> None:
        from django.core import checks

        from webconsole.privacy.checks import recordings_key

        checks.register(recordings_key)
