"""/health and /ready against the real PostgreSQL and Redis."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from channels.testing import HttpCommunicator
from django.conf import settings
from django.test import Client, override_settings


def test_health_answers_ok(client: Client) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


async def test_health_through_the_asgi_application() -> None:
    from webconsole.asgi import application

    response = await HttpCommunicator(application, "GET", "/health", headers=[(b"host", b"localhost")]).get_response()

    assert response["status"] == 200
    assert response["body"] == b'{"status": "ok"}'


@pytest.mark.django_db
def test_ready_when_postgres_and_redis_answer(client: Client) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_ready_503_when_redis_refuses(client: Client, closed_port: int) -> None:
    with override_settings(AIPBX_REDIS_URL=f"redis://127.0.0.1:{closed_port}/0"):
        response = client.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")


def test_ready_503_when_postgres_refuses(client: Client, closed_port: int) -> None:
    with mock.patch.dict(settings.DATABASES["default"], {"HOST": "127.0.0.1", "PORT": str(closed_port)}):
        response = client.get("/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres"].startswith("error: ")
    assert checks["redis"] == "ok"


def test_ready_gives_up_after_one_second_on_silent_servers(client: Client, silent_port: int) -> None:
    # given: both dependencies accept TCP connections but never answer
    silent_db = {"HOST": "127.0.0.1", "PORT": str(silent_port)}
    started = time.monotonic()

    # when
    with (
        mock.patch.dict(settings.DATABASES["default"], silent_db),
        override_settings(AIPBX_REDIS_URL=f"redis://127.0.0.1:{silent_port}/0"),
    ):
        response = client.get("/ready")

    # then: the checks ran concurrently, each bounded by its 1 s timeout
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "postgres": "error: no answer within 1 s",
        "redis": "error: no answer within 1 s",
    }
    assert 0.9 < elapsed < 1.9


@pytest.mark.django_db
def test_ready_recovers_on_the_next_probe(client: Client, closed_port: int) -> None:
    # given: a probe that saw Redis down
    with override_settings(AIPBX_REDIS_URL=f"redis://127.0.0.1:{closed_port}/0"):
        assert client.get("/ready").status_code == 503

    # when: Redis is reachable again
    response = client.get("/ready")

    # then: nothing about the failure was remembered
    assert response.status_code == 200


def _connections_received(port: int) -> int:
    import redis

    return int(redis.Redis(port=port, single_connection_client=True).info("stats")["total_connections_received"])


@pytest.mark.django_db
def test_a_flood_of_ready_probes_opens_no_connection_per_hit(client: Client, settings) -> None:
    from stack.instance import free_port
    from tests.web.test_metrics import _private_redis

    # given a Redis of this test's own, so that its connection counter is ours
    port = free_port()
    server = _private_redis(port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                before = _connections_received(port)
                break
            except Exception:
                assert time.monotonic() < deadline, "the test's Redis did not start"
                time.sleep(0.1)
        settings.AIPBX_REDIS_URL = f"redis://127.0.0.1:{port}/0"
        settings.AIPBX_READY_CACHE_S = 60.0  # a generous window: no hit below may fall outside it
        # when /ready is asked 20 times
        answers = [client.get("/ready") for _ in range(20)]
        # then all are answered, from one probe (the counter read itself is one more connection)
        assert {a.status_code for a in answers} == {200}
        assert _connections_received(port) - before == 1 + 1
        # and once the answer is older than the window, the next hit probes again
        settings.AIPBX_READY_CACHE_S = 0.2
        time.sleep(0.5)
        assert client.get("/ready").status_code == 200
        assert _connections_received(port) - before == 1 + 1 + 2
    finally:
        server.terminate()
        server.wait(10)
