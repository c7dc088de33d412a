"""``manage.py reindex_knowledge [--owner X]``: rebuild the vector index from PostgreSQL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.actions import reindex
from knowledge.retrieval import RetrievalError


class Command(BaseCommand):
    help = "Rebuild the knowledge vector index from PostgreSQL (approved items only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", help="Only this owner (extension); default: every owner.")

    def handle(self, *args: Any, owner: str | None = None, **options: Any) -> None:
        try:
            counts = reindex(owner)
        except RetrievalError as exc:
            raise CommandError(f"reindexing failed: {exc}") from exc
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} approved item(s) indexed")
        if not counts:
            self.stdout.write("no knowledge items")
