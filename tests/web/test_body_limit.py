"""Request bodies are limited before Django reads them, for anonymous and logged-in clients (issue 15, item 6).

The requests go through ``webconsole.asgi.application`` (the object Daphne serves) with a hand-made
ASGI ``receive`` that counts what it is asked for, so "refused before reading the body" is observed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import Client

from knowledge.models import ImportJob
from tests.web.calls_factory import make_user
from webconsole.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


@dataclass
class Exchange:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    reads: int = 0  # how many times the server asked for a piece of the body
    cookies: dict[str, str] = field(default_factory=dict)


async def request(
    method: str,
    path: str,
    *,
    chunks: list[bytes] = (),
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    content_length: int | None = None,
) -> Exchange:
    """One HTTP request through the ASGI application; the body arrives in ``chunks``."""
    raw = [(b"host", b"testserver")]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    if content_length is not None:
        raw.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    exchange = Exchange()
    pieces = list(chunks)

    async def receive() -> dict[str, Any]:
        if not pieces and exchange.reads >= max(1, len(chunks)):
            await asyncio.Event().wait()  # the body is all read: the client stays until the response
        exchange.reads += 1
        body = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": body, "more_body": bool(pieces)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            for name, value in message["headers"]:
                exchange.headers[name.lower()] = value
                if name.lower() == b"set-cookie":
                    cookie = SimpleCookie(value.decode())
                    exchange.cookies.update({k: m.value for k, m in cookie.items()})
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    await application(scope, receive, send)
    return exchange


async def db(function: Callable[..., Any], *args: Any) -> Any:
    """Run ORM code in a thread, then close that thread's connection (the test database is dropped at the end)."""

    def run() -> Any:
        try:
            return function(*args)
        finally:
            connections.close_all()

    return await sync_to_async(run)()


def logged_in_cookies() -> dict[str, str]:
    """The session cookie of an operator of extension 1002."""
    client = Client()
    client.force_login(make_user(f"op-{uuid.uuid4().hex[:6]}", extensions=("1002",)))
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/calls/", "/knowledge/import/"])
async def test_an_oversized_content_length_is_refused_before_the_body_is_read(path: str) -> None:
    limit = settings.AIPBX_MAX_UPLOAD_BYTES if path.startswith("/knowledge/") else settings.AIPBX_MAX_BODY_BYTES
    declared = limit + 1
    exchange = await request("POST", path, chunks=[b"x" * 1024], content_length=declared)
    assert exchange.status == 413 and b"limit" in exchange.body
    assert exchange.reads == 0  # not one byte of the body was asked for


async def test_a_logged_in_client_is_refused_as_well() -> None:
    cookies = await db(logged_in_cookies)
    exchange = await request("POST", "/knowledge/import/", cookies=cookies, content_length=10**12)
    assert exchange.status == 413 and exchange.reads == 0
    assert not await db(ImportJob.objects.exists)


@pytest.mark.parametrize("logged_in", [False, True])
async def test_a_chunked_body_is_cut_off_past_the_limit(logged_in: bool) -> None:
    cookies = await db(logged_in_cookies) if logged_in else {}
    chunk = b"y" * (256 * 1024)
    count = settings.AIPBX_MAX_UPLOAD_BYTES // len(chunk) + 40  # far more than the limit, with no length
    exchange = await request(
        "POST",
        "/knowledge/import/",
        chunks=[chunk] * count,
        cookies=cookies,
        headers={"transfer-encoding": "chunked", "content-type": "application/octet-stream"},
    )
    assert exchange.status == 413
    assert exchange.reads <= settings.AIPBX_MAX_UPLOAD_BYTES // len(chunk) + 2  # it stopped reading at the limit
    assert not await db(ImportJob.objects.exists)


async def test_small_bodies_still_reach_django() -> None:
    exchange = await request(
        "POST",
        "/accounts/login/",
        chunks=[b"username=a&password=b"],
        content_length=21,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert exchange.status == 403  # Django's CSRF check answered: the request got through


async def test_a_legitimate_upload_over_the_general_limit_is_imported(settings: Any, tmp_path: Path) -> None:
    settings.AIPBX_KNOWLEDGE_UPLOAD_DIR = tmp_path
    cookies = await db(logged_in_cookies)
    form = await request("GET", "/knowledge/import/", cookies=cookies)
    assert form.status == 200, (form.status, form.headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body).group(1).decode()
    cookies |= form.cookies
    # a 2 MB text file: over the 1 MiB general limit, well under the upload limit
    text = ("The office is open on weekdays from nine to six. " * 40 + "\n\n") * 1000
    boundary = "aipbxboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="owner"\r\n\r\n1002\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="faq.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()
    assert settings.AIPBX_MAX_BODY_BYTES < len(body) < settings.AIPBX_MAX_UPLOAD_BYTES
    exchange = await request(
        "POST",
        "/knowledge/import/",
        chunks=[body[i : i + MIB] for i in range(0, len(body), MIB)],
        cookies=cookies,
        content_length=len(body),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert exchange.status == 302, exchange.body[:500]
    assert await db(ImportJob.objects.filter(owner="1002").count) == 1
