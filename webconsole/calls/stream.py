"""The console's reader of the ARI app's event stream (a Redis Streams consumer group).

Each batch read is applied in one database transaction (each entry in a savepoint of its own) and
acknowledged (``XACK``) only after the commit, so a crash anywhere leaves the entries pending and
they are applied again on restart — a no-op for any that had committed (events are idempotent by
id). Entries that can never be applied
(malformed) are copied to ``<stream>:dead`` with the reason, then acknowledged. While PostgreSQL
is unreachable nothing is acknowledged; the reader backs off and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from django.db import Error as DatabaseError
from django.db import close_old_connections, transaction

from contract import dead_letter_stream
from webconsole.calls.ingest import BadEvent, apply_event

log = logging.getLogger(__name__)

GROUP = "console"


class EventReader:
    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        consumer: str = "console-1",
        *,
        block_ms: int = 2000,
        batch: int = 100,
        group: str = GROUP,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.block_ms = block_ms
        self.batch = batch
        self.applied = self.duplicates = self.dead = 0

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: events written before the console first ran are wanted too.
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        periodic: Sequence[Callable[[], object]] = (),
        every_s: float = 5.0,
    ) -> None:
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
        self._apply_batch(entries)
        return len(entries)

    def drain(self) -> int:
        """Apply everything available now without waiting (tests, ``--once``)."""
        self.ensure_group()
        total = 0
        while True:
            entries = self._read("0", block=None) or self._read(">", block=None)
            if not entries:
                return total
            self._apply_batch(entries)
            total += len(entries)

    def _read(self, start: str, block: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=self.batch, block=block)
        if not reply:
            return []
        _, entries = reply[0]
        return [(entry_id, fields) for entry_id, fields in entries if fields]  # trimmed entries come back empty

    def _apply_batch(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply ``entries`` in one transaction (one commit, not one per event), then acknowledge them.

        Each event still runs in its own savepoint (``apply_event``'s atomic block) and is idempotent;
        a database error rolls the whole batch back and nothing is acknowledged.
        """
        if not entries:
            return
        dead: list[tuple[bytes, dict[bytes, bytes], str]] = []
        applied = duplicates = 0
        with transaction.atomic():
            for entry_id, fields in entries:
                try:
                    if apply_event(fields):
                        applied += 1
                    else:
                        duplicates += 1
                except BadEvent as exc:
                    dead.append((entry_id, fields, str(exc)))
        for entry_id, fields, reason in dead:
            log.error("dead-lettering stream entry %s: %s", entry_id, reason)
            self.client.xadd(dead_letter_stream(self.stream), {**fields, "reason": reason[:500]}, maxlen=10_000)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        self.applied += applied
        self.duplicates += duplicates
        self.dead += len(dead)
