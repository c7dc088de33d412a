"""Shared plumbing of the local aiohttp fakes: start on a random loopback port, record, stall, stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["LocalHttpServer", "RecordedRequest", "sse_event"]


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)


def sse_event(payload: Any, *, crlf: bool = False) -> bytes:
    """One server-sent event carrying ``payload`` as JSON (or a raw string such as ``[DONE]``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    end = "\r\n\r\n" if crlf else "\n\n"
    return f"data: {data}{end}".encode()


class LocalHttpServer:
    """An aiohttp application on ``127.0.0.1:<random port>``; subclasses add routes in ``routes()``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        #: Called with each recorded request, on the server's loop (e.g. to wake a test in another thread).
        self.listeners: list[Callable[[RecordedRequest], None]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        # shutdown_timeout: a handler still stalling when the test ends must not hold up cleanup.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self._closing.set()  # ends every stall at once
        if self._runner is not None:
            await self._runner.cleanup()

    async def stall(self, seconds: float) -> None:
        """Sleep ``seconds``; if the server is stopped meanwhile, end the handler quietly."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return
        raise asyncio.CancelledError  # the client is gone; aiohttp drops a cancelled handler silently

    async def record(self, request: web.Request) -> RecordedRequest:
        """Store the request (JSON body or multipart form) and return the record."""
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        if request.content_type == "application/json":
            recorded.json = await request.json()
        elif request.content_type.startswith("multipart/"):
            form = await request.post()
            recorded.form = {
                key: (value.file.read() if isinstance(value, web.FileField) else value) for key, value in form.items()
            }
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    recorded.form[f"{key}.filename"] = value.filename
                    recorded.form[f"{key}.content_type"] = value.content_type
        self.requests.append(recorded)
        for listener in self.listeners:
            listener(recorded)
        return recorded
