"""``manage.py import_knowledge --owner 1002 FILE...``: import text/Markdown/CSV as approved knowledge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from knowledge.importing import ImportFailed, check_owner, import_file, parse_file
from knowledge.retrieval import RetrievalError


def progress_bar(label: str, stream: OutputWrapper, width: int = 30) -> Callable[[int, int], None]:
    """A callback drawing ``label [####    ] done/total`` on ``stream`` (stderr; redrawn in place)."""

    def draw(done: int, total: int) -> None:
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        stream.write(f"\r{label} [{'#' * filled}{' ' * (width - filled)}] {done}/{total}{end}", ending="")
        stream.flush()

    return draw


class Command(BaseCommand):
    help = "Import knowledge files (.txt, .md, .csv with question,answer) for one owner as approved items."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="Extension of the callee, e.g. 1002.")
        parser.add_argument("files", nargs="+", type=Path, help="Files to import.")

    def handle(self, *args: Any, owner: str, files: list[Path], **options: Any) -> None:
        try:
            # Every file is checked before the first is written: a typo in the last
            # file must not leave the first ones imported.
            check_owner(owner)
            for path in files:
                parse_file(path)
            for path in files:
                job = import_file(owner, path, progress=progress_bar(path.name, self.stderr))
                self.stdout.write(f"{path}: {job.done} item(s) imported for {owner} (job {job.pk})")
        except (ImportFailed, RetrievalError) as exc:
            raise CommandError(str(exc)) from exc
