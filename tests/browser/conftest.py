"""Fixtures for end-to-end tests: the console served by a real Daphne, driven in Debian's headless Chromium.

- ``web_server`` (session): ``python -m daphne webconsole.asgi:application`` on a free port, with
  the test settings and pytest-django's *test* database. Tests that use it need ``transactional_db``
  so that the rows they create are committed and visible to the Daphne process. Static files
  (admin and console CSS/JS) are served by the application itself (WhiteNoise), as in production.
- ``chromium_browser`` (session): Playwright's sync API launching ``/usr/bin/chromium``. Never a
  browser downloaded by ``playwright install``; a missing Chromium fails the test.
- ``page`` (function): a fresh browser context and page. When a test fails, a screenshot and the
  page's HTML go to the test's tmp dir, and their paths and the tail of the Daphne log are added
  to the failure report.

Theory of the event loop hand-off: Playwright's sync API runs an asyncio loop in a greenlet of its
own, and between two sync calls it leaves that loop registered as the thread's *running* loop.
Two things break on that:

- every asyncio test after it (pytest-asyncio, ``asyncio_mode = "auto"``) fails with "Cannot run
  the event loop while another loop is running";
- the ORM, in the test and its fixtures, raises ``SynchronousOnlyOperation`` ("You cannot call
  this from an async context").

So the loop is registered only while a test that uses the browser runs
(``_playwright_runs_the_loop``) or a session fixture makes its own Playwright calls, and
unregistered after. For that time ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set in this process (never in
Daphne's): the "async context" Django sees is Playwright's idle loop, and no coroutine of it
touches the database while the test's synchronous code does. One more consequence: with a loop
registered, Django keeps its database connections in a separate (context-local) slot, so the ORM
of a browser test opens a connection of its own. It is closed when the loop is unregistered;
left open, it would make pytest-django's final DROP DATABASE fail ("is being accessed by other
users"). It also means a browser test must use ``transactional_db``: its rows are committed by
that connection, outside the test transaction of plain ``db``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from stack.instance import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# The flags of the machine notes: without the background-networking ones Chromium keeps trying
# Google's hosts, which this machine's closed network refuses. Playwright passes a fresh
# temporary --user-data-dir itself and removes it on close.
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root; Chromium refuses to start sandboxed then
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 10_000
# Pages are asked for in English so that assertions read like the source strings; the console's
# default language (Korean) is covered by the Django client tests in tests/web.
PAGE_LOCALE = "en-US"
SERVER_START_TIMEOUT = 30.0
LOG_TAIL_LINES = 40
_ALLOW_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

# The open page of a test and the directory for its failure artifacts, for the report hook.
_open_page = pytest.StashKey[tuple[Page, Path]]()


@dataclass(frozen=True)
class WebServer:
    """A running Daphne serving the console: ``url`` has no trailing slash."""

    url: str
    log_path: Path

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines Daphne wrote (access log and errors)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class _PlaywrightSession:
    playwright: Playwright
    loop: asyncio.AbstractEventLoop

    @contextmanager
    def running(self) -> Iterator[None]:
        """Register Playwright's loop as the running one for the duration (see the module docstring)."""
        allow_before = os.environ.get(_ALLOW_ASYNC_UNSAFE)
        os.environ[_ALLOW_ASYNC_UNSAFE] = "true"
        asyncio._set_running_loop(self.loop)
        try:
            yield
        finally:
            connections.close_all()  # the ones opened in the loop's slot (module docstring)
            asyncio._set_running_loop(None)
            if allow_before is None:
                del os.environ[_ALLOW_ASYNC_UNSAFE]
            else:
                os.environ[_ALLOW_ASYNC_UNSAFE] = allow_before


# --- the web server -------------------------------------------------------------------------------


def _wait_for_health(proc: subprocess.Popen[bytes], server: WebServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"daphne exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"daphne did not answer /health within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")
        time.sleep(0.1)


@contextmanager
def run_daphne(log_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[WebServer]:
    """Daphne serving ``webconsole.asgi:application`` with ``settings.test`` on the test database.

    Call after ``django_db_setup``, which renamed NAME to the test database. ``extra_env`` adds to
    (or overrides) the environment, e.g. a stack instance's knowledge store and recordings.
    """
    from django.conf import settings

    from webconsole.settings.env import database_url

    port = free_port()
    server = WebServer(url=f"http://127.0.0.1:{port}", log_path=log_dir / "daphne.log")
    env = {k: v for k, v in os.environ.items() if k != _ALLOW_ASYNC_UNSAFE}  # see the module docstring
    env |= {
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.test",
        "AIPBX_DATABASE_URL": database_url(settings.DATABASES["default"]),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webconsole.asgi:application"]
    with server.log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_health(proc, server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[WebServer]:
    """The console on the test database (see ``run_daphne``)."""
    with run_daphne(tmp_path_factory.mktemp("daphne")) as server:
        yield server


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright() -> Iterator[_PlaywrightSession]:
    # sync_playwright().start() rather than a `with` block: the session fixture's generator must
    # not hold Playwright's loop registered while other tests run.
    playwright = sync_playwright().start()
    session = _PlaywrightSession(playwright, asyncio.get_running_loop())
    asyncio._set_running_loop(None)
    try:
        yield session
    finally:
        with session.running():
            playwright.stop()


@pytest.fixture(scope="session")
def chromium_browser(_playwright: _PlaywrightSession) -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once per test session."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests drive Debian's Chromium and never download one. "
            "Install it with `apt-get install chromium` (scripts/setup.sh and .ci/run do)."
        )
    with _playwright.running():
        browser = _playwright.playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        expect.set_options(timeout=PAGE_TIMEOUT_MS)
    try:
        yield browser
    finally:
        with _playwright.running():
            browser.close()


@pytest.fixture(autouse=True)
def _playwright_runs_the_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a test that uses the browser, make Playwright's loop the running one (module docstring)."""
    if "chromium_browser" not in request.fixturenames:
        yield
        return
    session: _PlaywrightSession = request.getfixturevalue("_playwright")
    request.getfixturevalue("chromium_browser")
    with session.running():
        yield


@pytest.fixture
def page(chromium_browser: Browser, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new page in a context of its own (no cookies shared between tests)."""
    context = chromium_browser.new_context(locale=PAGE_LOCALE)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        new_page = context.new_page()
        request.node.stash[_open_page] = (new_page, tmp_path)
        yield new_page
    finally:
        if _open_page in request.node.stash:
            del request.node.stash[_open_page]
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure while ``page`` is open, save a screenshot and the HTML; report them and Daphne's log."""
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call") and _open_page in item.stash:
        page, tmp_path = item.stash[_open_page]
        lines = []
        try:
            page.screenshot(path=tmp_path / "failure.png", full_page=True)
            (tmp_path / "failure.html").write_text(page.content())
            lines.append(f"page at failure: {page.url}")
            lines.append(f"screenshot: {tmp_path / 'failure.png'}")
            lines.append(f"html: {tmp_path / 'failure.html'}")
        except Exception as exc:  # the browser may be what broke; still show the server log
            lines.append(f"no screenshot: {exc!r}")
        server: WebServer | None = getattr(item, "funcargs", {}).get("web_server")
        if server is not None:
            lines.append(f"daphne log tail ({server.log_path}):\n{server.log_tail()}")
        report.sections.append(("browser", "\n".join(lines)))
    return report


# --- the ARI app's events -------------------------------------------------------------------------


@pytest.fixture
def ari_events() -> Iterator[Callable[..., None]]:
    """``ari_events(*entries)``: append stream entries (``tests.web.calls_factory.event``) to the console's
    event stream, as the ARI app does, and apply them as ``manage.py consume_events`` does: read by a
    consumer group of the test's own (from now on, so earlier tests' entries are not replayed), stored
    in PostgreSQL, relayed to Daphne's pages over the channel layer after the commit.

    HITL replies pushed meanwhile are deleted at the end.
    """
    import redis
    from django.conf import settings

    from webconsole.calls import live
    from webconsole.calls.stream import EventReader

    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    stream, group = settings.AIPBX_EVENTS_STREAM, f"browser-{uuid.uuid4().hex[:12]}"
    client.xgroup_create(stream, group, id="$", mkstream=True)
    reader = EventReader(client, stream, group=group)

    def inject(*entries: dict[str, str]) -> None:
        for entry in entries:
            client.xadd(stream, entry)
        reader.drain()
        assert live.flush(), "the live relay did not hand the updates to the channel layer"

    try:
        yield inject
    finally:
        client.xgroup_destroy(stream, group)
        for key in client.scan_iter(f"aipbx:{settings.AIPBX_INSTANCE}:hitl:*"):
            client.delete(key)
        client.close()


# --- helpers --------------------------------------------------------------------------------------


def login(page: Page, web_server: WebServer, username: str, password: str) -> None:
    """Log in through the console's form at /accounts/login/ and wait for the answer page to load.

    Returns on success and on refusal alike (the form comes back with an error): the caller
    asserts where it landed.
    """
    page.goto(f"{web_server.url}/accounts/login/")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(password)
    # A refused login answers with the same URL, so wait for a new document rather than a URL.
    page.evaluate("window.__aipbxLoginForm = true")
    page.locator('form[action$="/accounts/login/"] [type="submit"]').click()
    page.wait_for_function("window.__aipbxLoginForm === undefined")
    page.wait_for_load_state("load")
