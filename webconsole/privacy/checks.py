"""System checks of the privacy app: say loudly when recordings would be kept in clear."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def recordings_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Development and test settings may run without AIPBX_RECORDINGS_KEYS (prod refuses to start)."""
    if getattr(settings, "AIPBX_RECORDINGS_KEYRING", None) is not None:
        return []
    return [
        checks.Warning(
            "AIPBX_RECORDINGS_KEYS is not set: recordings and transcripts are written and kept in clear, and the "
            "recordings sweep cannot seal them.",
            hint="Set it (`make up` writes one to .env; a new one: python -m aipbx.sealing newkey). "
            "The production settings refuse to start without it.",
            id="privacy.W001",
        )
    ]
