"""``manage.py apply_retention [--dry-run] [--days N]``: delete what is older than the retention period."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webconsole.privacy.retention import apply_retention


class Command(BaseCommand):
    help = "Delete recordings, transcripts, knowledge provenance and CDR lines older than AIPBX_RETENTION_DAYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; change nothing.")
        parser.add_argument("--days", type=int, default=None, help="Override AIPBX_RETENTION_DAYS (0 = keep all).")

    def handle(self, *args: Any, **options: Any) -> None:
        report = apply_retention(days=options["days"], dry_run=options["dry_run"])
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
