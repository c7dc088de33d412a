"""``manage.py subject_export --phone 010-1234-5678 --out file.zip``: one caller's data as an archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webconsole.privacy.subject import SubjectError, export


class Command(BaseCommand):
    help = "Export everything stored about a caller (PostgreSQL, files, vector store, Redis) as one zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="The caller's number, any spelling.")
        parser.add_argument("--out", required=True, type=Path, help="The zip file to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = export(options["phone"], options["out"])
        except SubjectError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(manifest, ensure_ascii=False, indent=2))
