"""``manage.py subject_delete --phone 010-1234-5678 [--yes]``: remove one caller's data everywhere."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webconsole.privacy.subject import SubjectError, check_phone, delete


class Command(BaseCommand):
    help = "Delete everything stored about a caller (PostgreSQL, files, vector store, Redis); prints counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="The caller's number, any spelling.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            number = check_phone(options["phone"])
            if not options["yes"] and input(f"Delete all data of {number}? Type yes: ").strip() != "yes":
                raise CommandError("not confirmed; nothing deleted")
            report = delete(number)
        except SubjectError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
