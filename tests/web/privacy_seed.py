"""Seed data of the privacy tests: calls of two callers across PostgreSQL, files, Redis and knowledge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from knowledge.actions import do_add_item, reset_retriever
from knowledge.models import Source, Status
from webconsole.calls.models import Call, CallEvent, Turn
from webconsole.hitl.models import HitlRequest
from webconsole.webhooks.models import OutboxEvent


@dataclass
class Stores:
    recordings: Path
    cdr: Path
    stream: str
    redis: redis.Redis


@pytest.fixture
def stores(settings: Any, tmp_path: Path) -> Iterator[Stores]:
    """Scratch recordings and CDR directories, a stream of this test's own, a fresh in-memory index."""
    settings.AIPBX_RECORDINGS_DIR = tmp_path / "recordings"
    settings.AIPBX_CDR_DIR = tmp_path / "cdr"
    settings.AIPBX_INSTANCE = f"testpriv{uuid.uuid4().hex[:10]}"
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"priv{uuid.uuid4().hex[:8]}"
    (tmp_path / "recordings").mkdir()
    (tmp_path / "cdr").mkdir()
    reset_retriever()
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)
    stream = f"aipbx:{settings.AIPBX_INSTANCE}:events"
    yield Stores(tmp_path / "recordings", tmp_path / "cdr", stream, client)
    client.delete(stream)
    client.close()
    reset_retriever()


def seed_call(
    stores: Stores,
    call_id: str,
    caller: str,
    started: datetime,
    *,
    callee: str = "1002",
    knowledge: str = "",
    encrypted: bool = False,
) -> Call:
    """One AI call with two turns, two events, a HITL request, a recordings dir, a CDR line, stream
    entries and (when ``knowledge``) an approved item derived from it."""
    call = Call.objects.create(
        call_id=call_id,
        caller=caller,
        callee=callee,
        started=started,
        state="ended",
        recording_dir=str(stores.recordings / call_id),
    )
    for index, (speaker, text) in enumerate([("caller", f"Hi, {call_id} here."), ("ai", "How can I help?")]):
        Turn.objects.create(call=call, event_id=f"{call_id}-t{index}", t=float(index), speaker=speaker, text=text)
        CallEvent.objects.create(call=call, event_id=f"{call_id}-e{index}", type="turn", ts=started, data={"i": index})
    HitlRequest.objects.create(
        request_id=f"{call_id}-r",
        call=call,
        question=f"question of {call_id}",
        recent_turns=[{"speaker": "caller", "text": "words"}],
        answer_raw="ok",
        answer_text="OK.",
        created=started,
    )
    OutboxEvent.objects.create(
        type="call_ended",
        key=f"call_ended:{call_id}",
        occurred_at=started,
        payload={"call_id": call_id, "caller": caller, "callee": callee},
    )
    folder = stores.recordings / call_id
    folder.mkdir()
    suffix = ".enc" if encrypted else ""
    for name in ("caller.wav", "callee.wav", "mixed.wav", "transcript.txt", "metadata.json"):
        (folder / f"{name}{suffix}").write_bytes(f"{call_id}/{name}".encode())
    day = stores.cdr / f"cdr-{started.date().isoformat()}.jsonl"
    with day.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {
                    "call_id": call_id,
                    "caller": caller,
                    "callee": callee,
                    "start": started.isoformat(),
                    "end": started.isoformat(),
                }
            )
            + "\n"
        )
    stores.redis.xadd(
        stores.stream,
        {
            "event_id": uuid.uuid4().hex,
            "type": "call.started",
            "call_id": call_id,
            "ts": f"{started.timestamp():.3f}",
            "data": json.dumps({"caller": caller, "callee": callee}),
        },
    )
    stores.redis.xadd(
        stores.stream,
        {
            "event_id": uuid.uuid4().hex,
            "type": "turn",
            "call_id": call_id,
            "ts": f"{started.timestamp():.3f}",
            "data": json.dumps({"text": "hi"}),
        },
    )
    if knowledge:
        do_add_item(
            callee,
            knowledge,
            source=Source.CALL,
            source_call_id=call_id,
            source_speaker="caller",
            source_span={"start_s": 0.0, "end_s": 2.0},
            status=Status.APPROVED,
        )
    return call
