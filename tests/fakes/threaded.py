"""Run a local fake server on its own event loop in a background thread.

The fakes are aiohttp applications; a test whose client blocks (``asyncio.run``
inside the code under test) or lives in another process (a Celery worker) needs
the server to keep serving while the test thread waits. ``ServerThread`` owns
that loop, and lets the test wait for a real signal: "the server has received
``n`` requests".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from tests.fakes.http_server import LocalHttpServer, RecordedRequest

__all__ = ["ServerThread"]

S = TypeVar("S", bound=LocalHttpServer)
T = TypeVar("T")


class ServerThread(Generic[S]):
    """``with ServerThread(FakeOpenAI()) as thread: thread.server.api_url ...``."""

    def __init__(self, server: S, *, start_timeout_s: float = 10.0) -> None:
        self.server = server
        self.start_timeout_s = start_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-server", daemon=True)
        self._seen = threading.Condition()
        self._count = 0
        server.listeners.append(self._on_request)

    def __enter__(self) -> ServerThread[S]:
        self._thread.start()
        self.run(self.server.start(), timeout_s=self.start_timeout_s)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.server.stop(), timeout_s=10.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
            self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout_s: float = 10.0) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the server's loop (e.g. ``event.set``), without waiting."""
        self._loop.call_soon_threadsafe(fn, *args)

    def new_event(self) -> asyncio.Event:
        """An ``asyncio.Event`` that belongs to the server's loop (set it with ``call(event.set)``)."""

        async def make() -> asyncio.Event:
            return asyncio.Event()

        return self.run(make())

    def wait_for_requests(self, count: int, timeout_s: float) -> bool:
        """Block until the server has recorded ``count`` requests in all; False on timeout."""
        with self._seen:
            return self._seen.wait_for(lambda: self._count >= count, timeout_s)

    def _on_request(self, request: RecordedRequest) -> None:
        with self._seen:
            self._count += 1
            self._seen.notify_all()
