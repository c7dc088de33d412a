"""Real parts for integration tests: an Asterisk 22 instance in the chroot, the ARI app as a process,
and SIP phones registered to it.

Nothing here skips: without root, the chroot or a working Asterisk these fixtures fail loudly, as they
must in CI. The Asterisk instance has its own ports and directories, so it can run beside ``make up``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from aipbx.queues import worker_queues
from stack.asterisk import Asterisk
from stack.config import StackConfig
from stack.instance import AppProcess, knowledge_server, scratch_config

RING_SECONDS = 2  # the tests' no-answer timeout (production default: 10 s)


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


@pytest.fixture(scope="session")
def pbx(tmp_path_factory) -> Pbx:
    import redis
    from django.conf import settings

    from ariapp.events import stream_name

    cfg = scratch_config(f"test{os.getpid()}", tmp_path_factory.mktemp("pbx"), ring_seconds=RING_SECONDS)
    # After each call the ARI app hands it to the worker (transcript, learning) on this session's own
    # queue of the test broker; nothing consumes it unless a test starts a worker (test_learning.py).
    cfg.extra_env.update(
        {
            "AIPBX_EXTRACT_AFTER_CALL": "1",
            "AIPBX_CELERY_QUEUE": f"aipbx-{cfg.name}",
            "AIPBX_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        }
    )
    asterisk = Asterisk(cfg)
    asterisk.start()
    yield Pbx(cfg, asterisk)
    asterisk.stop()
    redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL).delete(stream_name(cfg.name))
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*worker_queues(cfg.extra_env["AIPBX_CELERY_QUEUE"]))


@pytest.fixture(scope="session")
def knowledge_store(pbx: Pbx):
    """The test instance's Chroma server (a real server process)."""
    pbx.cfg.log_dir.mkdir(parents=True, exist_ok=True)
    server = knowledge_server(pbx.cfg)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ariapp(pbx: Pbx, knowledge_store) -> AppProcess:
    app = AppProcess(pbx.cfg)
    app.start()
    yield app
    app.stop()


_ariapp_log_at = pytest.StashKey[list[tuple[AppProcess, int]]]()


def _apps_of(item: pytest.Item) -> list[AppProcess]:
    """The ARI apps a test uses: the ``ariapp`` fixture, or one inside a fixture's tuple (a module's own
    stack, an edge's nodes)."""
    apps: list[AppProcess] = []
    for value in getattr(item, "funcargs", {}).values():
        for candidate in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(candidate, AppProcess) and candidate not in apps:
                apps.append(candidate)
    return apps


class _AriappLogOnFailure:
    """A failed test's report carries what its ARI apps logged while it ran: a call that went wrong in CI
    (no greeting, a busy message, a crashed session) then says why without a rerun."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        item.stash[_ariapp_log_at] = [
            (app, app.log_path.stat().st_size if app.log_path.exists() else 0) for app in _apps_of(item)
        ]
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        report: pytest.TestReport = yield
        if report.failed and report.when == "call":
            for app, offset in item.stash.get(_ariapp_log_at, []):
                if not app.log_path.exists():
                    continue
                with open(app.log_path, "rb") as log:
                    log.seek(offset)
                    lines = log.read().decode(errors="replace").splitlines()
                report.sections.append((f"ariapp log during the test ({app.log_path})", "\n".join(lines[-200:])))
        return report


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("ariapp-log-on-failure"):
        config.pluginmanager.register(_AriappLogOnFailure(), "ariapp-log-on-failure")


@pytest.fixture
def phones(pbx: Pbx):
    """``async with phones("1001") as phone`` — a started, registered softphone; closed afterwards."""
    from softphone import Phone

    async def _reachable(ext: str, timeout: float = 5.0) -> None:
        # Asterisk marks the device available a moment after the REGISTER's 200 (a device-state
        # message): until then the dialplan takes the phone for unregistered, skips the recording
        # notice and hands the call to the AI at once. A loaded box widened that moment enough to hit.
        deadline = time.monotonic() + timeout
        while (await asyncio.to_thread(pbx.ari, f"/ari/deviceStates/PJSIP%2F{ext}"))["state"] == "UNAVAILABLE":
            if time.monotonic() > deadline:
                raise AssertionError(f"{ext} registered but Asterisk does not list it online after {timeout} s")
            await asyncio.sleep(0.05)

    @asynccontextmanager
    async def make(ext: str, register: bool = True):
        phone = Phone(
            ext=ext, password=pbx.cfg.sip_password(ext), server=("127.0.0.1", pbx.cfg.sip_port), local_ip="127.0.0.1"
        )
        await phone.start()
        try:
            if register:
                await phone.register(expires=120)
                await _reachable(ext)
            yield phone
        finally:
            if register:
                try:
                    await phone.unregister()
                except Exception:  # the call may have already torn the registration down
                    pass
            await phone.close()

    return make


# --- the console beside the PBX (browser end-to-end tests) -----------------------------------------
from tests.browser.conftest import (  # noqa: E402,F401 - fixtures and the failure-report hook
    _playwright,
    _playwright_runs_the_loop,
    chromium_browser,
    page,
    pytest_runtest_makereport,
)


@dataclass
class Console:
    """The web console (Daphne) and its event consumer, on the test database, serving the test PBX."""

    url: str
    server: object
    consumer_log: object

    def log_tail(self) -> str:
        return self.server.log_tail()


@pytest.fixture(scope="package")
def console(pbx: Pbx, ariapp, django_db_setup, tmp_path_factory):
    """``python -m daphne`` and ``manage.py consume_events`` for the ``pbx`` instance.

    Both get the instance's environment (event stream, knowledge store, recordings), so what the
    ARI app does shows up in the console as it would under ``make up``. They stop when the
    integration tests are done: the consumer queries the test database every few seconds (HITL
    redelivery), and a query in the middle of a later test's flush deadlocked with its TRUNCATE.
    """
    import subprocess
    import sys

    from django.conf import settings

    from stack.config import REPO
    from tests.browser.conftest import run_daphne
    from webconsole.settings.env import database_url

    logs = tmp_path_factory.mktemp("console")
    env = {**pbx.cfg.process_env(), "AIPBX_KNOWLEDGE_STORE": "chroma"}
    consumer_log = logs / "events.log"
    consumer_env = {
        **os.environ,
        **env,
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        "AIPBX_DATABASE_URL": database_url(settings.DATABASES["default"]),
    }
    consumer_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with consumer_log.open("wb") as log:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "consume_events"],
            cwd=REPO,
            env=consumer_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with run_daphne(logs, env) as server:
            yield Console(server.url, server, consumer_log)
    finally:
        consumer.terminate()
        try:
            consumer.wait(10)
        except subprocess.TimeoutExpired:
            consumer.kill()
