"""Daphne serving the production settings: TLS assumptions, probes and the container health check."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from aipbx.sealing import new_key_spec
from stack.instance import free_port
from tests.web.conftest import REPO_ROOT
from webconsole.settings.env import database_url

pytestmark = pytest.mark.slow

HOST = "pbx.example.com"


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[int]:
    """``daphne webconsole.asgi:application`` with DJANGO_SETTINGS_MODULE unset (so prod).

    It uses the test database (created by ``django_db_setup``) and the test Redis db.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env |= {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "AIPBX_RECORDINGS_KEYS": new_key_spec("k1"),  # mandatory in prod
        "AIPBX_DATABASE_URL": database_url(settings.DATABASES["default"]),
        "AIPBX_REDIS_URL": settings.AIPBX_REDIS_URL,
    }
    log_path: Path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    daphne = Path(sys.executable).with_name("daphne")
    command = [str(daphne), "-b", "127.0.0.1", "-p", str(port), "webconsole.asgi:application"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"daphne exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"daphne did not listen within 20 s:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": HOST, **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_probes_answer_over_plain_http(prod_server: int) -> None:
    assert _get(prod_server, "/health").status == 200
    assert _get(prod_server, "/ready").status == 200


def test_pages_redirect_to_https(prod_server: int) -> None:
    response = _get(prod_server, "/admin/")

    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOST}/admin/"


def test_behind_the_tls_proxy(prod_server: int) -> None:
    response = _get(prod_server, "/accounts/login/", **{"X-Forwarded-Proto": "https"})

    assert response.status == 200
    assert "max-age=31536000" in (response.getheader("Strict-Transport-Security") or "")
    assert "Secure" in (response.getheader("Set-Cookie") or "")


def test_container_health_check(prod_server: int) -> None:
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": f".{HOST}"}
    ok = subprocess.run(
        [sys.executable, "-m", "webconsole.healthcheck", f"http://127.0.0.1:{prod_server}/ready"],
        cwd=REPO_ROOT, env=env, capture_output=True, timeout=30,
    )  # fmt: skip
    down = subprocess.run(
        [sys.executable, "-m", "webconsole.healthcheck", f"http://127.0.0.1:{free_port()}/health"],
        cwd=REPO_ROOT, env=env, capture_output=True, timeout=30,
    )  # fmt: skip

    assert ok.returncode == 0, ok.stderr
    assert down.returncode == 1
    assert b"failed" in down.stderr


def test_an_oversized_body_is_refused_by_the_real_server_before_it_is_sent(prod_server: int) -> None:
    # the headers announce 10 GB, and not one byte of it follows: the answer must come anyway
    with socket.create_connection(("127.0.0.1", prod_server), timeout=10) as sock:
        sock.sendall(
            f"POST /accounts/login/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {10**10}\r\nX-Forwarded-Proto: https\r\n\r\n".encode()
        )
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_is_cut_off_by_the_real_server_at_the_limit(prod_server: int) -> None:
    chunk = b"z" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", prod_server), timeout=10) as sock:
        sock.sendall(
            f"POST /accounts/login/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/plain\r\n"
            f"Transfer-Encoding: chunked\r\nX-Forwarded-Proto: https\r\n\r\n".encode()
        )
        try:
            while sent < 64 * settings.AIPBX_MAX_BODY_BYTES:  # far past the limit, unless the server hangs up
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: expected
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert sent < 64 * settings.AIPBX_MAX_BODY_BYTES  # it did not read everything first
