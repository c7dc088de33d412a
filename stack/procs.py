"""Background processes of a stack instance (Chroma, ARI app, web, worker, event ingestion): start, stop, status.

Each runs detached in its own session with a pid file in ``var/<instance>/run`` and a log in
``var/<instance>/log``, so ``make down`` can stop what ``make up`` started from another shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aipbx.queues import long_queue
from stack.config import REPO, StackConfig


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the instance's environment


def services(cfg: StackConfig) -> list[Service]:
    from knowledge.retrieval.chroma_server import server_command

    py = sys.executable
    queue = cfg.extra_env.get("AIPBX_CELERY_QUEUE", "aipbx")  # the ARI app's follow-ups go to its long queue
    celery = [py, "-m", "celery", "-A", "webconsole", "worker", "--pool=solo", "--loglevel=info"]
    return [
        # Checks AIPBX_CHROMA_TOKEN (process_env) on every request but the heartbeat.
        Service("chroma", server_command(cfg.data_dir / "chroma", "127.0.0.1", cfg.chroma_port)),
        Service("ariapp", [py, "-m", "ariapp"]),
        Service("web", [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(cfg.web_port), "webconsole.asgi:application"]),
        # Two workers, so that webhooks and retention never wait behind an import or a transcription:
        # the default queue (-B: it also runs Celery beat, webhook sweep every 30 s, daily retention)
        # and the long one (imports, transcription, extraction), with its metrics on the next port.
        Service("worker", [*celery, "-Q", queue, "-B", "--schedule", str(cfg.run_dir / "celerybeat-schedule")]),
        Service(
            "worker-long",
            [*celery, "-Q", long_queue(queue)],
            {"AIPBX_WORKER_METRICS_PORT": str(cfg.worker_metrics_port + 1 if cfg.worker_metrics_port else 0)},
        ),
        Service("events", [py, "manage.py", "consume_events"]),
    ]


def _pid_file(cfg: StackConfig, name: str) -> Path:
    return cfg.run_dir / f"{name}.pid"


def pid_in(path: Path) -> int | None:
    """The live process whose pid ``path`` holds (None: no file, garbage, or the process is gone)."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, under another user
        pass
    return pid


def pid_of(cfg: StackConfig, name: str) -> int | None:
    return pid_in(_pid_file(cfg, name))


def start(cfg: StackConfig, service: Service, env: dict[str, str]) -> int:
    existing = pid_of(cfg, service.name)
    if existing:
        return existing
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.log_dir / f"{service.name}.log", "ab") as log:
        proc = subprocess.Popen(
            service.argv,
            cwd=REPO,
            env={**env, **service.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _pid_file(cfg, service.name).write_text(str(proc.pid))
    return proc.pid


def stop(cfg: StackConfig, name: str, timeout: float = 10.0) -> bool:
    pid = pid_of(cfg, name)
    _pid_file(cfg, name).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # Reap it if it is our child (e.g. started by this same process).
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def log_tail(cfg: StackConfig, name: str, lines: int = 30) -> str:
    path = cfg.log_dir / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
