"""``manage.py sync_extensions``: mirror ``asterisk/extensions.yaml`` into the Extension table."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from webconsole.calls.directory import sync_extensions


class Command(BaseCommand):
    help = "Create or rename Extension rows from asterisk/extensions.yaml (never deletes)."

    def handle(self, *args, **options) -> None:
        created, updated = sync_extensions(settings.AIPBX_EXTENSIONS_FILE)
        self.stdout.write(f"extensions: {created} created, {updated} seeded from the file")
