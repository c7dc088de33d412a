"""Fixtures for the web-console tests: real PostgreSQL, real Redis, a real Celery worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from aipbx.queues import worker_queues

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Iterator[None]:
    """Each test gets channel layers of its own, as each async test gets an event loop of its own.

    channels_redis binds a layer's receive lock to the loop of the first ``receive()`` and counts the
    receives in progress; a consumer a test left listening when its loop closed keeps that count up,
    and every later test's consumer then fails on the dead loop's lock ("bound to a different event
    loop"). Dropping the cached layers confines such a leftover to its own test.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def closed_port() -> int:
    """A localhost TCP port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A localhost TCP port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def celery_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``celery -A webconsole worker`` as a subprocess on this session's queues (default and long).

    Yields the worker's node name once it answers a control ping; the worker is
    terminated (then killed if it lingers) at teardown.
    """
    from webconsole.celery import app

    queue = app.conf.task_default_queue
    node = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webconsole.settings.test"}
    command = [
        sys.executable, "-m", "celery", "-A", "webconsole", "worker",
        "--pool=solo", "-Q", ",".join(worker_queues(queue)), "-n", node, "--loglevel=warning",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_worker(app, proc, node, log_path)
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_worker(app: Celery, proc: subprocess.Popen[bytes], node: str, log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited with {proc.returncode}:\n{log_path.read_text()}")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    pytest.fail(f"celery worker did not answer within {WORKER_START_TIMEOUT} s:\n{log_path.read_text()}")
