"""``manage.py consume_events``: store the ARI app's call events and relay them to the live pages."""

from __future__ import annotations

import signal
import socket

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

from webconsole.calls.stream import GROUP, EventReader


class Command(BaseCommand):
    help = "Apply the ARI app's call events (Redis Stream) to PostgreSQL and the live console pages."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stream",
            default=settings.AIPBX_EVENTS_STREAM,
            help="Redis stream (default: %(default)s, from AIPBX_INSTANCE)",
        )
        parser.add_argument("--redis", default=settings.AIPBX_EVENTS_REDIS_URL, help="Redis holding the stream")
        parser.add_argument(
            "--group",
            default=GROUP,
            help="consumer group (default: %(default)s); a second console on its own database needs a group of its own",
        )
        parser.add_argument("--once", action="store_true", help="apply what is there now, then exit")

    def handle(self, *args, stream: str, redis: str, group: str, once: bool, **options) -> None:
        client = _redis(redis)
        reader = EventReader(client, stream, consumer=f"console-{socket.gethostname()}", group=group)
        if once:
            count = reader.drain()
            self.stdout.write(
                f"applied {reader.applied}, duplicates {reader.duplicates}, dead {reader.dead} ({count} entries)"
            )
            return
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"consuming {stream}")
        from webconsole.hitl.replies import redeliver_answers

        reader.run(lambda: stopping, periodic=[redeliver_answers])


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10.0, socket_connect_timeout=3.0)
