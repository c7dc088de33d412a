"""The console's reader of the ARI app's event stream (a Redis Streams consumer group).

Each entry is applied in its own database transaction and acknowledged (``XACK``) only after the
commit, so a crash anywhere leaves the entry pending and it is applied again on restart — a
no-op if it had committed (events are idempotent by id). Entries that can never be applied
(malformed) are copied to ``<stream>:dead`` with the reason, then acknowledged. While PostgreSQL
is unreachable nothing is acknowledged; the reader backs off and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from django.db import Error as DatabaseError
from django.db import close_old_connections

from webconsole.calls.ingest import BadEvent, apply_event

log = logging.getLogger(__name__)

GROUP = "console"


class EventReader:
    def __init__(self, client: redis.Redis, stream: str, consumer: str = "console-1", *, block_ms: int = 2000,
                 batch: int = 100) -> None:
        self.client = client
        self.stream = stream
        self.consumer = consumer
        self.block_ms = block_ms
        self.batch = batch
        self.applied = self.duplicates = self.dead = 0

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: events written before the console first ran are wanted too.
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, should_stop: Callable[[], bool] = lambda: False,
            periodic: Sequence[Callable[[], object]] = (), every_s: float = 5.0) -> None:
        """Apply entries until ``should_stop()``; between reads, run each of ``periodic`` every ``every_s``."""
        self.ensure_group()
        delay = 0.5
        last = time.monotonic()
        while not should_stop():
            try:
                self.step()
                delay = 0.5
                if periodic and time.monotonic() - last >= every_s:
                    last = time.monotonic()
                    for job in periodic:
                        job()
            except (DatabaseError, redis.RedisError, OSError) as exc:
                log.warning("event ingestion paused (%s); retrying in %.1f s", exc, delay)
                close_old_connections()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    self.ensure_group()

    def step(self) -> int:
        """Apply what is pending for this consumer (after a crash), else wait for new entries."""
        entries = self._read("0", block=None)
        if not entries:
            entries = self._read(">", block=self.block_ms)
        for entry_id, fields in entries:
            self._apply(entry_id, fields)
        return len(entries)

    def drain(self) -> int:
        """Apply everything available now without waiting (tests, ``--once``)."""
        self.ensure_group()
        total = 0
        while True:
            entries = self._read("0", block=None) or self._read(">", block=None)
            if not entries:
                return total
            for entry_id, fields in entries:
                self._apply(entry_id, fields)
            total += len(entries)

    def _read(self, start: str, block: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply = self.client.xreadgroup(GROUP, self.consumer, {self.stream: start}, count=self.batch, block=block)
        if not reply:
            return []
        _, entries = reply[0]
        return [(entry_id, fields) for entry_id, fields in entries if fields]  # trimmed entries come back empty

    def _apply(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            if apply_event(fields):
                self.applied += 1
            else:
                self.duplicates += 1
        except BadEvent as exc:
            log.error("dead-lettering stream entry %s: %s", entry_id, exc)
            self.client.xadd(self.stream + ":dead", {**fields, "reason": str(exc)[:500]}, maxlen=10_000)
            self.dead += 1
        self.client.xack(self.stream, GROUP, entry_id)
