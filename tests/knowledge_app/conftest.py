"""Fixtures of the knowledge-app tests: real PostgreSQL, an in-memory (or real Chroma) index, transcripts.

Tests run with ``transaction=True`` so ``transaction.on_commit`` fires and the
vector index is updated exactly as in production. Each test gets its own
``MemoryStore`` (a fresh collection prefix makes ``get_retriever`` build one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipbx.queues import worker_queues
from contract import CallAnswered, CallEnded, CallStarted, Envelope, Event, Transcript, TurnPlayed, encode
from knowledge.actions import reset_retriever
from webconsole.settings.env import database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 30.0

#: A phone-to-phone call to 1002: its owner (the callee) states facts; the caller says things that look
#: like facts but are the caller's own, never 1002's knowledge.
PHONE_CALL_TURNS = [
    {
        "t": 0.5,
        "end": 4.0,
        "speaker": "caller",
        "text": "Hi, this is Alex from Acme. Our office moves to building 7 next Monday.",
    },
    {
        "t": 4.4,
        "end": 12.0,
        "speaker": "callee",
        "text": "Thanks Alex. The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2. "
        "Please call me back at 010-1234-5678.",
    },
    {"t": 12.5, "end": 14.0, "speaker": "caller", "text": "Great, thank you."},
]

#: An AI-handled call to 1002: the caller leaves a message (call notes), the AI only repeats it.
AI_CALL_TURNS = [
    {"t": 0.0, "speaker": "ai", "text": "Hello, this is the AI assistant of Jiyoung Lee. How can I help you?"},
    {
        "t": 6.5,
        "speaker": "caller",
        "text": "Hi, this is Alex from Acme. The delivery will arrive tomorrow at "
        "9 a.m. at the lobby of building 2. Please call me back at 010-1234-5678.",
    },
    {"t": 14.0, "speaker": "ai", "text": "Thank you. I will pass this on to Jiyoung Lee."},
]


@pytest.fixture(autouse=True)
def knowledge_settings(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Memory index with a per-test prefix, and a scratch recordings directory."""
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kbtest{uuid.uuid4().hex[:8]}"
    settings.AIPBX_RECORDINGS_DIR = tmp_path / "recordings"
    settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE = 0.7
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV, settings.AIPBX_KNOWLEDGE_JUDGE = "local", {}, "auto"
    reset_retriever()
    yield tmp_path / "recordings"
    reset_retriever()


def call_events(call_id: str, turns: list[dict[str, Any]], callee: str = "1002") -> list[Event]:
    """The events the ARI app publishes for a finished call of ``turns`` (an AI call if the AI speaks)."""
    ai = any(turn["speaker"] == "ai" for turn in turns)
    start = "2026-11-25T01:00:00.000+00:00"
    events: list[Event] = [
        CallStarted(caller="1001", callee=callee, start=start),
        CallAnswered(answered_by="ai" if ai else callee, ai=ai),
    ]
    for turn in turns:
        if turn["speaker"] == "ai":
            events.append(TurnPlayed(t=turn["t"], speaker="ai", text=turn["text"]))
        else:
            end = turn.get("end")
            events.append(Transcript(turn["speaker"], turn["text"], True, turn["t"], end, 0.9 if end else None))
    cdr = {"call_id": call_id, "caller": "1001", "callee": callee, "start": start, "answer": start}
    cdr |= {"end": "2026-11-25T01:00:20.000+00:00", "billsec": 20.0, "ai_handled": ai}
    events.append(CallEnded(cdr=cdr, turns=sum(1 for turn in turns if turn["text"].strip())))
    return events


def publish(call_id: str, *events: Event) -> None:
    """Apply ``events`` as the console's event consumer does (through the stream's encoding)."""
    from webconsole.calls.ingest import apply_event

    for event in events:
        apply_event(encode(Envelope.of(event, call_id)))


def write_call(recordings: Path, call_id: str, turns: list[dict[str, Any]], callee: str = "1002") -> Path:
    """A finished call as the stack leaves it; returns its ``metadata.json``.

    The console's consumer stored its events (the turns in PostgreSQL, which the worker reads), and
    the ARI app wrote ``<recordings>/<call_id>/metadata.json`` (which the worker no longer reads).
    """
    publish(call_id, *call_events(call_id, turns, callee))
    folder = recordings / call_id
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"call": {"call_id": call_id, "caller": "1001", "callee": callee, "billsec": 20.0}, "turns": turns}
    path = folder / "metadata.json"
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return path


def worker_database_url() -> str:
    """The test database as a URL for a worker process (``AIPBX_DATABASE_URL``)."""
    from django.db import connection

    return database_url(connection.settings_dict)


def spawn_worker(queue: str, recordings: Path, log_path: Path, node: str = "", **env: str) -> subprocess.Popen[bytes]:
    """Start ``celery -A webconsole worker --pool=solo -Q queue,queue.long`` on the test database.

    The solo pool runs tasks in the worker process itself, so killing that one
    process kills the task it is running (the case the broker has to recover).
    """
    node = node or f"pytest-kb-{uuid.uuid4().hex[:8]}@localhost"
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        "AIPBX_DATABASE_URL": worker_database_url(),
        "AIPBX_RECORDINGS_DIR": str(recordings),
        "AIPBX_KNOWLEDGE_STORE": "memory",
        "AIPBX_LLM": "local",
        "AIPBX_KNOWLEDGE_JUDGE": "auto",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "webconsole",
        "worker",
        "--pool=solo",
        "-Q",
        ",".join(worker_queues(queue)),
        "-n",
        node,
        "--loglevel=warning",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """Warm shutdown, or a kill when it does not end in time."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def knowledge_worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``celery -A webconsole worker`` on the test database; yields its recordings directory."""
    from webconsole.celery import app

    recordings = tmp_path_factory.mktemp("worker-recordings")
    log_path = tmp_path_factory.mktemp("celery-kb") / "worker.log"
    node = f"pytest-kb-{uuid.uuid4().hex[:8]}@localhost"
    proc = spawn_worker(app.conf.task_default_queue, recordings, log_path, node)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not app.control.ping(destination=[node], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log_path.read_text()}")
        yield recordings
    finally:
        stop_worker(proc)


def wait_until_finished(call_id: str, timeout_s: float) -> Any:
    """The call's ExtractionRun once it is no longer ``running`` (polled in the database), else None."""
    from knowledge.models import ExtractionRun

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = ExtractionRun.objects.filter(call_id=call_id).exclude(status=ExtractionRun.RunStatus.RUNNING).first()
        if run is not None:
            return run
        time.sleep(0.1)
    return None
