"""``manage.py retry_extractions [--call-id ID ...]``: run failed knowledge extractions again.

The runs are queued for the Celery worker (``extract_knowledge_task``); the
command returns at once unless ``--wait`` asks it to follow them to the end.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.actions import do_retry_extractions
from knowledge.models import ExtractionRun


class Command(BaseCommand):
    help = "Queue the failed knowledge extractions (or the named calls) for the Celery worker again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--call-id",
            action="append",
            dest="call_ids",
            metavar="ID",
            help="Only this call (repeatable); a call with no run yet is queued too. Default: every failed run.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Wait up to this long for the queued runs to finish and print their outcome.",
        )

    def handle(self, *args: Any, call_ids: list[str] | None = None, wait: float = 0.0, **options: Any) -> None:
        queued = do_retry_extractions(call_ids)
        for call_id in call_ids or []:
            if call_id not in queued:
                status = ExtractionRun.objects.get(call_id=call_id).status
                self.stderr.write(f"{call_id}: not failed ({status}), left alone")
        if not queued:
            if call_ids:
                raise CommandError("none of the named calls has a failed extraction run")
            self.stdout.write("no failed extraction runs")
            return
        self.stdout.write(f"queued {len(queued)} extraction run(s): {', '.join(queued)}")
        if wait > 0:
            self._follow(queued, wait)

    def _follow(self, call_ids: list[str], wait: float) -> None:
        deadline = time.monotonic() + wait
        pending = set(call_ids)
        while pending and time.monotonic() < deadline:
            finished = ExtractionRun.objects.filter(call_id__in=pending).exclude(status=ExtractionRun.RunStatus.RUNNING)
            for run in finished:
                pending.discard(run.call_id)
                self.stdout.write(f"{run.call_id}: {run.status} ({run.items_created} item(s)) {run.reason}".rstrip())
            if pending:
                time.sleep(0.2)
        if pending:
            raise CommandError(f"still running after {wait:g} s: {', '.join(sorted(pending))}")
