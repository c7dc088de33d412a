"""``manage.py learned_from_call CALL_ID [--wait SECONDS]``: what a call taught its owner's AI.

Prints one JSON document: the call's extraction run (status, reason, the caller's notes) and the
items learned from it (text, status, speaker, where in the call). With ``--wait`` it first waits for
the call to be transcribed and read (the worker does both after the call), so scripts and the demo
can follow a call to the end.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.models import ExtractionRun, KnowledgeItem, Source


class Command(BaseCommand):
    help = "Show what a call taught its owner's AI (as JSON), optionally waiting for the worker to finish."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("call_id")
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Wait up to this long for the call's extraction to finish.",
        )

    def handle(self, *args: Any, call_id: str, wait: float = 0.0, **options: Any) -> None:
        deadline = time.monotonic() + wait
        run = self._finished(call_id)
        while run is None and time.monotonic() < deadline:
            time.sleep(0.5)
            run = self._finished(call_id)
        if run is None:
            raise CommandError(f"{call_id}: not read yet" + (f" after {wait:g} s" if wait else ""))
        items = KnowledgeItem.objects.filter(source=Source.CALL, source_call_id=call_id).order_by("pk")
        self.stdout.write(
            json.dumps(
                {
                    "call_id": call_id,
                    "owner": run.owner,
                    "status": run.status,
                    "reason": run.reason,
                    "notes": run.notes,
                    "items": [
                        {
                            "id": i.pk,
                            "text": i.text,
                            "status": i.status,
                            "confidence": round(i.confidence, 2),
                            "speaker": i.source_speaker,
                            "span": i.source_span,
                        }
                        for i in items
                    ],
                },
                ensure_ascii=False,
            )
        )

    @staticmethod
    def _finished(call_id: str) -> ExtractionRun | None:
        return ExtractionRun.objects.filter(call_id=call_id).exclude(status=ExtractionRun.RunStatus.RUNNING).first()
