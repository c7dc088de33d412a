"""A throw-away stack instance for tests and benchmarks: its own ports and directories, the real
Asterisk in the shared chroot, and the ARI app as a real separate process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aipbx.directory import load_directory
from stack import redis_acl
from stack.asterisk import Asterisk
from stack.config import REPO, StackConfig, ensure_secrets

#: Where :func:`free_port` looks: above Asterisk's RTP ports (10000-20000), below the kernel's ephemeral range.
FREE_PORTS = (20001, 32767)


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind: int = socket.SOCK_STREAM, address: str = "127.0.0.1") -> int:
    """A port nothing is bound to now, for a server about to start on it.

    Not one the kernel hands out (a bind to port 0): those come from the ephemeral range, where any
    outgoing connection (to Postgres, Redis, ARI …) may take it as its source port before the server
    starts, as one of the edge's ports once was while its nodes started ("Address already in use").
    """
    low, high = FREE_PORTS[0], min(FREE_PORTS[1], _ephemeral_start() - 1)
    for _ in range(200 if low <= high else 0):  # an ephemeral range that starts lower: the kernel's port
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, kind) as sock:  # all taken: what the kernel gives
        sock.bind((address, 0))
        return sock.getsockname()[1]


def scratch_nodes(base: StackConfig, count: int) -> tuple[list[StackConfig], int, int]:
    """``count`` nodes of the scratch deployment ``base`` (tests, benchmarks) on free ports: their
    configs, the edge's SIP port and the port of its registration lookup."""
    from stack.cluster import node_address, node_config

    edge_port, lookup_port = free_port(socket.SOCK_DGRAM), free_port()
    nodes = [
        node_config(
            base,
            i,
            count,
            ("127.0.0.1", edge_port),
            sip_port=free_port(socket.SOCK_DGRAM, node_address(base, i)),
            http_port=free_port(),
            status_port=free_port(),
            lookup_port=lookup_port,
        )
        for i in range(1, count + 1)
    ]
    return nodes, edge_port, lookup_port


def scratch_config(name: str, base: Path, *, ring_seconds: int | None = 2) -> StackConfig:
    """Config for an instance living under ``base`` with free loopback ports."""
    directory = load_directory(REPO / "asterisk" / "extensions.yaml")
    return StackConfig(
        name=name,
        var_dir=base / "var",
        recordings_dir=base / "recordings",
        cdr_dir=base / "cdr",
        directory=directory,
        secrets=ensure_secrets(base / ".env", directory),
        sip_bind="127.0.0.1",
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
        status_port=free_port(),
        chroma_port=free_port(),
        worker_metrics_port=free_port(),
        ari_app=f"aipbx-{name}",
        qualify_seconds=0,
        no_answer_override=ring_seconds,
        # No worker consumes a scratch instance's calls unless a test starts one for its own queue.
        extra_env={"AIPBX_EXTRACT_AFTER_CALL": "0"},
    )


class AppProcess:
    """``python -m ariapp`` for one instance, as a real separate process."""

    def __init__(
        self, cfg: StackConfig, extra_env: dict[str, str] | None = None, cpus: frozenset[int] | None = None
    ) -> None:
        self.cfg = cfg
        self.extra_env = extra_env or {}
        self.cpus = cpus  # None: any core; else the process and every thread it starts run on these only
        self.proc: subprocess.Popen | None = None
        self.log_path = cfg.log_dir / "ariapp.log"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.status_port}"

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, **self.cfg.process_env(), **self.extra_env, "PYTHONPATH": str(REPO)}
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ariapp"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._preexec(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ariapp exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"ariapp not ready in {timeout} s; {self.asterisk_view()}\n{self.log_tail(30)}")

    def _preexec(self):
        """Before Python starts: the cores (the model threads it starts later inherit them) and the
        instance's network namespace (its ARI and status server are on that namespace's loopback)."""
        cpus, netns = self.cpus, self.cfg.netns
        if cpus is None and not netns:
            return None
        from stack.netns import entering

        enter = entering(netns) if netns else None

        def preexec() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if enter is not None:
                enter()

        return preexec

    def _get(self, path: str, timeout: float) -> bytes:
        def get() -> bytes:
            with urllib.request.urlopen(self.status_url + path, timeout=timeout) as response:
                if response.status != 200:
                    raise OSError(f"{path}: HTTP {response.status}")
                return response.read()

        if self.cfg.netns:
            from stack.netns import call_in

            return call_in(self.cfg.netns, get)
        return get()

    def asterisk_view(self) -> str:
        """What Asterisk says when the app cannot connect (a wedged ARI answers ping but not the app)."""
        from stack.asterisk import Asterisk

        asterisk = Asterisk(self.cfg)
        ping = "answers" if asterisk.ping() else "does not answer"
        try:
            apps = asterisk.cli("ari show apps", timeout=5.0).strip() or "(none)"
        except (OSError, subprocess.SubprocessError) as exc:
            apps = f"(ari show apps failed: {exc!r})"
        log = self.cfg.log_dir / "asterisk.out"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        return f"Asterisk ARI ping {ping}; ari show apps: {apps}\nasterisk.out tail:\n" + "\n".join(tail)

    def ready(self) -> bool:
        try:
            self._get("/ready", 1.0)
            return True
        except OSError:
            return False

    def status(self) -> dict:
        return json.loads(self._get("/status", 2.0))

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def knowledge_server(cfg: StackConfig):
    """The instance's Chroma server (the knowledge store), not yet started."""
    from knowledge.retrieval.chroma_server import ChromaServer

    return ChromaServer(
        cfg.data_dir / "chroma", token=cfg.chroma_token, port=cfg.chroma_port, log_path=cfg.log_dir / "chroma.log"
    )


class Instance:
    """Asterisk + knowledge store + ARI app for one scratch instance; a context manager."""

    def __init__(self, cfg: StackConfig, app_env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.asterisk = Asterisk(cfg)
        self.chroma = knowledge_server(cfg)
        self.app = AppProcess(cfg, app_env)

    def __enter__(self) -> Instance:
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        if self.cfg.redis_url:  # its own Redis user (stack.redis_acl), removed again at exit
            redis_acl.set_user(
                self.cfg.redis_admin_url, self.cfg.redis_user, self.cfg.secrets["AIPBX_REDIS_PASSWORD"], self.cfg.name
            )
        self.asterisk.start()
        try:
            self.chroma.start()
            self.app.start()
        except Exception:
            self.chroma.stop()
            self.asterisk.stop()
            self._remove_redis_user()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.stop()
        self.chroma.stop()
        self.asterisk.stop()
        self._remove_redis_user()

    def _remove_redis_user(self) -> None:
        if self.cfg.redis_url:
            redis_acl.remove_user(self.cfg.redis_admin_url, self.cfg.redis_user)
