"""``manage.py deliver_webhooks [--once]``: the webhook sweep without Celery beat."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webconsole.webhooks.delivery import sweep


class Command(BaseCommand):
    help = "Send due pending webhook deliveries (once, or every --interval seconds until stopped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Sweep once and exit.")
        parser.add_argument("--interval", type=float, default=30.0, help="Seconds between sweeps (default 30).")

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        while True:
            outcomes = sweep()
            summary = ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "nothing due"
            self.stdout.write(f"webhooks: {summary}")
            if once:
                return
            time.sleep(interval)
