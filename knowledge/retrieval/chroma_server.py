"""Run the stack's Chroma server process for one data directory.

Chroma's embedded mode (``PersistentClient``) must never be opened by two
processes on one directory: the ARI app, the web console and the worker would
corrupt each other's index. So the stack runs exactly one server per data
directory and every process talks to it over HTTP (``ChromaStore``).
:class:`ChromaServer` starts that process, waits until it answers its
heartbeat, and stops it; tests and benchmarks use it for a scratch server.

The process is chromadb's Python server with token authentication on
(``python -m knowledge.retrieval.chroma_serve``, see there): a client without
the server's token is refused. The token is the instance's
``AIPBX_CHROMA_TOKEN``, or a fresh random one for a scratch server (:attr:`ChromaServer.token`).

A second :class:`ChromaServer` on the same directory is refused up front: an
exclusive ``flock`` on ``<data_dir>/.aipbx-chroma.lock`` is held for the life
of the process (the kernel drops it if we crash).

Everything it runs comes with the ``chromadb``, ``fastapi`` and ``uvicorn``
packages; nothing is downloaded.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from knowledge.retrieval.errors import BackendTimeout, BackendUnavailable, RetrievalError

__all__ = ["CHROMA_REQUIREMENT", "ChromaServer", "free_port", "server_command"]

CHROMA_REQUIREMENT: Final = "chromadb==1.5.9"
#: What chromadb's Python server needs beyond chromadb (requirements.txt pins the same).
SERVER_REQUIREMENTS: Final = "fastapi==0.165.0 opentelemetry-instrumentation-fastapi==0.66b2 uvicorn==0.55.0"
_LOCK_NAME: Final = ".aipbx-chroma.lock"
_HEARTBEAT: Final = "/api/v2/heartbeat"
_CODE_ROOT: Final = Path(__file__).resolve().parents[2]  # where ``knowledge`` is importable from


def _server_args(data_dir: Path, host: str, port: int) -> list[str]:
    return ["--path", str(data_dir), "--host", host, "--port", str(port)]


def server_command(data_dir: Path, host: str, port: int) -> list[str]:
    """The command that serves ``data_dir`` (the token goes in the environment: ``AIPBX_CHROMA_TOKEN``)."""
    return [sys.executable, "-m", "knowledge.retrieval.chroma_serve", *_server_args(data_dir, host, port)]


def _require_server_packages() -> None:
    missing = [name for name in ("chromadb", "fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailable(
            f"the Chroma server needs {', '.join(missing)}",
            install=f"pip install {CHROMA_REQUIREMENT} {SERVER_REQUIREMENTS}",
            backend="chroma",
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """One Chroma server subprocess (:func:`server_command`) that refuses clients without its token.

    Args:
        data_dir: Persistence directory (created if missing).
        token: What clients must send (``ChromaStore(token=...)``); None: a fresh random one.
        host: Listen address; loopback by default.
        port: Listen port; ``None`` picks a free one (retried if it is taken meanwhile).
        log_path: Where the server's output goes; defaults to ``<data_dir>/server.log``.
        command: Run this instead of :func:`server_command` (given the same arguments); for tests.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        #: The bearer token the server checks.
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.log_path = log_path or self.data_dir / "server.log"
        self._command = list(command) if command else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the server, if started."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = 30.0) -> ChromaServer:
        """Start the server and wait until it answers; returns self.

        Raises:
            BackendUnavailable: chromadb, fastapi or uvicorn is not installed.
            RetrievalError: The directory is in use by another server, or the process exited.
            BackendTimeout: No heartbeat within ``timeout_s``.
        """
        if self.running:
            return self
        if self._command is None:
            _require_server_packages()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        attempts = 1 if self._fixed_port else 3
        try:
            for attempt in range(attempts):
                self.port = self._fixed_port or free_port(self.host)
                self._spawn()
                try:
                    self.wait_ready(timeout_s)
                    return self
                except RetrievalError:
                    exited = self._process is not None and self._process.poll() is not None
                    self._terminate(5.0)
                    if not exited or attempt == attempts - 1:
                        raise
            raise AssertionError("unreachable")
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Poll the heartbeat until the server answers.

        Raises:
            RetrievalError: The process exited (the message has the end of its log).
            BackendTimeout: No answer within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise RetrievalError(
                    f"chroma server for {self.data_dir} exited (code {code}): {self._log_tail()}",
                    backend="chroma",
                )
            try:
                with urllib.request.urlopen(self.url + _HEARTBEAT, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BackendTimeout(
                    f"chroma server at {self.url} did not answer within {timeout_s} s", backend="chroma"
                )
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``) and release the directory."""
        atexit.unregister(self.stop)
        self._terminate(timeout_s)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.data_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise RetrievalError(
                f"{self.data_dir} is already served by another chroma server; talk to that one over HTTP",
                backend="chroma",
                retryable=False,
            ) from exc
        self._lock_fd = fd

    def _spawn(self) -> None:
        self._log = open(self.log_path, "ab")  # open for the process's lifetime
        if self._command:
            command = [*self._command, *_server_args(self.data_dir, self.host, self.port)]
        else:
            command = server_command(self.data_dir, self.host, self.port)
        path = os.pathsep.join(p for p in (str(_CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        # Same process group as ours (no new session): whoever stops our group stops the server too,
        # and atexit covers a normal interpreter exit without stop().
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path, "NO_COLOR": "1", "AIPBX_CHROMA_TOKEN": self.token},
        )
        atexit.register(self.stop)

    def _terminate(self, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, limit: int = 800) -> str:
        try:
            text = self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return " ".join(text.split())
