"""The Extension table follows ``asterisk/extensions.yaml`` (the PBX's config as code)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from ariapp.directory import load_directory
from webconsole.calls.models import Extension


def sync_extensions(path: Path) -> tuple[int, int]:
    """Create missing extensions and rename changed ones; returns ``(created, renamed)``.

    Extensions removed from the file are kept: calls and assignments still refer to them.
    """
    created = renamed = 0
    with transaction.atomic():
        for ext in load_directory(path):
            row, made = Extension.objects.get_or_create(number=ext.ext, defaults={"name": ext.owner})
            if made:
                created += 1
            elif row.name != ext.owner:
                row.name = ext.owner
                row.save(update_fields=["name"])
                renamed += 1
    return created, renamed
