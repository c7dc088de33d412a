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

    response = await HttpCommunicator(
        application, "GET", "/health", headers=[(b"host", b"localhost")]
    ).get_response()

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
