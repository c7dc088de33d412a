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

from knowledge.actions import reset_retriever

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 30.0

#: An AI-handled call to 1002: the caller leaves facts, the AI only repeats them.
AI_CALL_TURNS = [
    {"t": 0.0, "speaker": "ai", "text": "Hello, this is the AI assistant of Jiyoung Lee. How can I help you?"},
    {"t": 6.5, "speaker": "caller", "text": "Hi, this is Alex from Acme. The delivery will arrive tomorrow at "
                                           "9 a.m. at the lobby of building 2. Please call me back at 010-1234-5678."},
    {"t": 14.0, "speaker": "ai", "text": "Thank you. I will pass this on to Jiyoung Lee."},
]


@pytest.fixture(autouse=True)
def knowledge_settings(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Memory index with a per-test prefix, and a scratch recordings directory."""
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kbtest{uuid.uuid4().hex[:8]}"
    settings.AIPBX_RECORDINGS_DIR = tmp_path / "recordings"
    settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE = 0.7
    reset_retriever()
    yield tmp_path / "recordings"
    reset_retriever()


def write_call(recordings: Path, call_id: str, turns: list[dict[str, Any]], callee: str = "1002") -> Path:
    """Write ``<recordings>/<call_id>/metadata.json`` as the ARI app's recorder does."""
    folder = recordings / call_id
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"call": {"call_id": call_id, "caller": "1001", "callee": callee, "billsec": 20.0}, "turns": turns}
    path = folder / "metadata.json"
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def knowledge_worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``celery -A webconsole worker`` on the test database; yields its recordings directory."""
    from django.db import connection

    from webconsole.celery import app

    recordings = tmp_path_factory.mktemp("worker-recordings")
    db = connection.settings_dict
    db_url = f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    node = f"pytest-kb-{uuid.uuid4().hex[:8]}@localhost"
    log_path = tmp_path_factory.mktemp("celery-kb") / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webconsole.settings.test", "AIPBX_DATABASE_URL": db_url,
           "AIPBX_RECORDINGS_DIR": str(recordings), "AIPBX_KNOWLEDGE_STORE": "memory"}
    command = [sys.executable, "-m", "celery", "-A", "webconsole", "worker", "--pool=solo",
               "-Q", app.conf.task_default_queue, "-n", node, "--loglevel=warning",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not app.control.ping(destination=[node], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log_path.read_text()}")
        yield recordings
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
