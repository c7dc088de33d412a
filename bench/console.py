"""The console's event path: ingestion throughput into PostgreSQL, and latency to a live page.

1. Throughput: ``calls`` synthetic AI calls (10 events each: started, answered, state, greeting,
   interim and final transcript, retrieval, answer, latency, ended) are appended to a Redis Stream
   as the ARI app writes them, then applied by :class:`webconsole.calls.stream.EventReader` — the
   real code: a transaction per batch read, a savepoint and idempotency check per event, XACK after
   commit — in this process.
2. Latency: a real ``manage.py consume_events`` process reads the stream; this process listens on
   the Channels group admins' pages join (``calls.all``, Redis channel layer) and times each event
   from its XADD to its arrival there (stored, committed, acknowledged and relayed in between).

The database is a throw-away one, dropped at the end. Run alone: ``python -m bench.console [calls]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.db import throwaway_database
from contract import Envelope, encode

REPO_ROOT = Path(__file__).resolve().parents[1]


def _fields(event_type: str, call_id: str, **data: Any) -> dict[str, str]:
    return encode(Envelope(uuid.uuid4().hex, event_type, call_id, datetime.now(UTC), data))


def synthetic_call(call_id: str) -> list[dict[str, str]]:
    start = "2026-11-25T01:00:00.000+00:00"
    return [
        _fields("call.started", call_id, caller="01055550000", callee="1002", start=start),
        _fields("call.answered", call_id, answered_by="ai", ai=True),
        _fields("state", call_id, state="listening"),
        _fields(
            "turn",
            call_id,
            t=0.0,
            speaker="ai",
            text="안녕하세요, AI 비서입니다.",
            interrupted=False,
            unspoken="",
            latency_ms={},
            retrieved=[],
        ),
        _fields("transcript", call_id, speaker="caller", text="회의가", final=False, t=3.0),
        _fields("transcript", call_id, speaker="caller", text="회의가 언제예요?", final=True, t=3.0),
        _fields(
            "retrieval",
            call_id,
            question="회의가 언제예요?",
            t=3.0,
            results=[{"text": "회의는 화요일 10시입니다.", "score": 0.61, "item_id": None}],
        ),
        _fields(
            "turn",
            call_id,
            t=4.0,
            speaker="ai",
            text="회의는 화요일 10시입니다.",
            interrupted=False,
            unspoken="",
            latency_ms={},
            retrieved=[],
        ),
        _fields("latency", call_id, stt_final=300.0, retrieval=320.0, first_rtp=800.0),
        _fields(
            "call.ended",
            call_id,
            cdr={
                "call_id": call_id,
                "caller": "01055550000",
                "callee": "1002",
                "start": start,
                "end": "2026-11-25T01:00:30.000+00:00",
                "ai_handled": True,
                "duration": 30.0,
                "billsec": 20.0,
            },
        ),
    ]


def run_console_bench(calls: int = 200, latency_samples: int = 200) -> dict[str, Any]:
    with throwaway_database("aipbx_bench_console") as url:
        instance = f"bench{uuid.uuid4().hex[:8]}"
        env = {
            "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
            "AIPBX_DATABASE_URL": url,
            "AIPBX_INSTANCE": instance,
        }
        os.environ.update(env)
        import django

        django.setup()
        import redis
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        from webconsole.calls.models import CallEvent
        from webconsole.calls.stream import EventReader

        call_command("migrate", verbosity=0)
        client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
        stream = settings.AIPBX_EVENTS_STREAM
        try:
            entries = [e for i in range(calls) for e in synthetic_call(f"bench-{i}")]
            pipe = client.pipeline(transaction=False)
            for entry in entries:
                pipe.xadd(stream, entry)
            pipe.execute()
            reader = EventReader(client, stream, consumer="bench")
            started = time.perf_counter()
            applied = reader.drain()
            elapsed = time.perf_counter() - started
            assert applied == len(entries) and CallEvent.objects.count() == len(entries)
            throughput = {
                "events": applied,
                "seconds": round(elapsed, 2),
                "events_per_second": round(applied / elapsed, 1),
                "ms_per_event": round(elapsed * 1000 / applied, 2),
            }
            connections.close_all()
            latency = _latency(client, stream, {**os.environ, **env}, latency_samples)
        finally:
            client.delete(stream, stream + ":dead")
            client.close()
            connections.close_all()
        return {
            "what": "call events: Redis Stream -> PostgreSQL (one transaction per batch read) -> Channels group",
            "ingest": throughput,
            "live": latency,
        }


def _latency(client, stream: str, env: dict[str, str], samples: int) -> dict[str, Any]:
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"aipbx-bench-consumer-{os.getpid()}.log"
    with log_path.open("wb") as log:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "consume_events"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        delays = asyncio.run(_measure(client, stream, samples))
    finally:
        consumer.terminate()
        consumer.wait(10)
        log_path.unlink(missing_ok=True)
    delays.sort()
    return {
        "samples": len(delays),
        "p50_ms": round(statistics.median(delays), 2),
        "p95_ms": round(delays[int(len(delays) * 0.95) - 1], 2),
        "max_ms": round(delays[-1], 2),
    }


async def _measure(client, stream: str, samples: int) -> list[float]:
    from channels.layers import get_channel_layer

    from webconsole.calls.live import ALL_GROUP

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(ALL_GROUP, channel)
    delays: list[float] = []
    try:
        # warm-up: the consumer process has to start and create its group
        await asyncio.to_thread(client.xadd, stream, _fields("call.started", "warm-up", callee="1002"))
        await asyncio.wait_for(layer.receive(channel), 60)
        for index in range(samples):
            entry = _fields("state", f"bench-{index % 50}", state="thinking")
            sent = time.perf_counter()
            await asyncio.to_thread(client.xadd, stream, entry)
            while True:
                message = await asyncio.wait_for(layer.receive(channel), 10)
                if message["event"]["event_id"] == entry["event_id"]:
                    break
            delays.append((time.perf_counter() - sent) * 1000)
    finally:
        await layer.group_discard(ALL_GROUP, channel)
    return delays


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    json.dump(run_console_bench(count), sys.stdout, indent=2, ensure_ascii=False)
    print()
