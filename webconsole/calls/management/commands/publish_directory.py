"""``manage.py publish_directory``: seed new extensions from the YAML, then publish the directory."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webconsole.calls.directory import PublishError, publish_directory, sync_extensions


class Command(BaseCommand):
    help = "Seed extensions from asterisk/extensions.yaml (new rows only) and publish the directory to the ARI app."

    def handle(self, *args, **options) -> None:
        created, seeded = sync_extensions(settings.AIPBX_EXTENSIONS_FILE)
        try:
            revision = publish_directory()
        except PublishError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"extensions: {created} created, {seeded} seeded; directory revision {revision} published")
