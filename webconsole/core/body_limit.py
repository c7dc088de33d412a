"""Request bodies are limited before anything reads them: an ASGI middleware in front of Django.

Theory of operation
    Django's ASGI handler reads (and spools to disk) a request's whole body before any view or
    authentication runs, so without a limit one anonymous client can fill the disk and hold a
    worker thread. :class:`BodyLimit` wraps the HTTP application:

    * a ``Content-Length`` over the path's limit is answered ``413`` at once: the body is never
      read and Django never sees the request (a malformed length is ``400``);
    * a body without a length (``Transfer-Encoding: chunked``) is counted as it arrives; past
      the limit Django is told the client went away (it then answers nothing), the rest is not
      read, and the client gets ``413``.

    Daphne (Twisted underneath) reads a whole body into its own buffer or temporary file before it
    calls the application, so :func:`install_in_daphne` gives Daphne a request class that applies
    the same :class:`Limits` while the bytes arrive: an announced length over the limit is answered
    ``413`` before the body is sent, a chunked body is cut off at the limit, and the connection closed.

    The limit is ``AIPBX_MAX_BODY_BYTES`` (1 MiB: forms, JSON, HITL answers), and
    ``AIPBX_MAX_UPLOAD_BYTES`` (32 MiB) under the upload paths (the knowledge import). It is the
    same for anonymous and logged-in requests: it runs before authentication, by design.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BodyLimit", "Limits", "install_in_daphne"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """The most bytes a request body may have: ``default``, or ``by_prefix`` for paths under a prefix."""

    default: int
    by_prefix: Mapping[str, int] = field(default_factory=dict)

    def for_path(self, path: str) -> int:
        for prefix, limit in self.by_prefix.items():
            if path.startswith(prefix):
                return limit
        return self.default


class BodyLimit:
    """ASGI middleware: refuse request bodies over their :class:`Limits`."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "Malformed Content-Length.")
            return
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"Request body over the {limit}-byte limit.")
            return
        guard = _CountingReceive(receive, limit)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, guard, tracking_send)
        if guard.over and not started:
            await _refuse(send, 413, f"Request body over the {limit}-byte limit.")


class _CountingReceive:
    """``receive`` that counts body bytes; past the limit it reports a disconnect and reads no more."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.seen = 0
        self.over = False

    async def __call__(self) -> Message:
        if self.over:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.over = True
                return {"type": "http.disconnect"}
        return message


def _content_length(scope: Scope) -> int | None:
    """The declared length; ``None`` when absent, ``-1`` when malformed or given twice differently."""
    values = {value for name, value in scope.get("headers", []) if name.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1:
        return -1
    (raw,) = values
    text = raw.decode("latin-1").strip()
    return int(text) if text.isdigit() and len(text) <= 18 else -1


async def _refuse(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_in_daphne(limits: Limits) -> bool:
    """Make Daphne refuse bodies over ``limits`` while reading them; False when Daphne is not installed.

    Daphne builds a ``daphne.http_protocol.WebRequest`` per request when it serves; the subclass put
    in its place here checks the announced length as soon as the headers are in (Twisted's
    ``gotLength``) and counts the body as it arrives (``handleContentChunk``).
    """
    try:
        from daphne import http_protocol
    except ImportError:
        return False
    base = http_protocol.WebRequest
    if hasattr(base, "aipbx_limits"):  # installed already (the settings were read again)
        base.aipbx_limits = limits
        return True

    class LimitedWebRequest(base):  # type: ignore[misc, valid-type]
        aipbx_limits = limits
        _refused = False
        _seen = 0
        _limit = 0

        def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
            raw_path = getattr(self.channel, "_path", b"/") or b"/"  # the request line, parsed by the channel
            self._limit = self.aipbx_limits.for_path(raw_path.split(b"?", 1)[0].decode("latin-1"))
            if length is not None and length > self._limit:
                super().gotLength(0)
                self._refuse()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
            if self._refused:
                return
            self._seen += len(data)
            if self._seen > self._limit:
                self._refuse()
                return
            super().handleContentChunk(data)

        def process(self) -> Any:
            if self._refused:
                return None  # never handed to the application
            return super().process()

        def _refuse(self) -> None:
            self._refused = True
            body = f"Request body over the {self._limit}-byte limit.".encode()
            head = (
                b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            )
            self.channel.transport.write(head + body)
            self.channel.loseConnection()

    http_protocol.WebRequest = LimitedWebRequest
    return True
