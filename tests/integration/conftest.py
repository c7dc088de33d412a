"""Real parts for integration tests: an Asterisk 22 instance in the chroot, the ARI app as a process,
and SIP phones registered to it.

Nothing here skips: without root, the chroot or a working Asterisk these fixtures fail loudly, as they
must in CI. The Asterisk instance has its own ports and directories, so it can run beside ``make up``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ariapp.directory import load_directory
from stack.asterisk import Asterisk
from stack.config import REPO, StackConfig, ensure_secrets

RING_SECONDS = 2  # the tests' no-answer timeout (production default: 10 s)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pbx:
    cfg: StackConfig
    asterisk: Asterisk

    def ari(self, path: str):
        return self.asterisk.ari_get(path)

    def channels(self) -> list[dict]:
        return list(self.ari("/ari/channels"))

    def bridges(self) -> list[dict]:
        return list(self.ari("/ari/bridges"))

    def cdr_lines(self) -> list[dict]:
        lines = []
        for path in sorted(self.cfg.cdr_dir.glob("cdr-*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return lines

    def cdr_for(self, call_id: str) -> list[dict]:
        return [line for line in self.cdr_lines() if line["call_id"] == call_id]


@pytest.fixture(scope="session")
def pbx(tmp_path_factory) -> Pbx:
    base = tmp_path_factory.mktemp("pbx")
    directory = load_directory(REPO / "asterisk" / "extensions.yaml")
    secrets = ensure_secrets(base / ".env", directory)
    cfg = StackConfig(
        name=f"test{os.getpid()}",
        var_dir=base / "var",
        recordings_dir=base / "recordings",
        cdr_dir=base / "cdr",
        directory=directory,
        secrets=secrets,
        sip_bind="127.0.0.1",
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
        status_port=free_port(),
        ari_app=f"aipbx-test{os.getpid()}",
        qualify_seconds=0,
        no_answer_override=RING_SECONDS,
    )
    asterisk = Asterisk(cfg)
    asterisk.start()
    yield Pbx(cfg, asterisk)
    asterisk.stop()


class AppProcess:
    """``python -m ariapp`` for the test instance, as a real separate process."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.proc: subprocess.Popen | None = None
        self.log_path = pbx.cfg.log_dir / "ariapp-test.log"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.pbx.cfg.status_port}"

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, **self.pbx.cfg.process_env(), "PYTHONPATH": str(REPO)}
        self.pbx.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ariapp"], cwd=REPO, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ariapp exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"ariapp not ready in {timeout} s:\n{self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.status_url + "/ready", timeout=1.0) as response:
                return response.status == 200
        except OSError:
            return False

    def status(self) -> dict:
        with urllib.request.urlopen(self.status_url + "/status", timeout=2.0) as response:
            return json.loads(response.read())

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


@pytest.fixture(scope="session")
def ariapp(pbx: Pbx) -> AppProcess:
    app = AppProcess(pbx)
    app.start()
    yield app
    app.stop()


@pytest.fixture
def phones(pbx: Pbx):
    """``async with phones("1001") as phone`` — a started, registered softphone; closed afterwards."""
    from softphone import Phone

    @asynccontextmanager
    async def make(ext: str, register: bool = True):
        phone = Phone(ext=ext, password=pbx.cfg.sip_password(ext), server=("127.0.0.1", pbx.cfg.sip_port),
                      local_ip="127.0.0.1")
        await phone.start()
        try:
            if register:
                await phone.register(expires=120)
            yield phone
        finally:
            if register:
                try:
                    await phone.unregister()
                except Exception:  # the call may have already torn the registration down
                    pass
            await phone.close()

    return make


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def recordings_dir(pbx: Pbx, call_id: str) -> Path:
    return pbx.cfg.recordings_dir / call_id
