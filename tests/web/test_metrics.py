"""/metrics of the web console and of the Celery worker, and /ready recovering after Redis returns."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from knowledge.models import ExtractionRun, KnowledgeItem, Status
from stack.instance import free_port
from webconsole.calls.models import CallState
from webconsole.hitl.models import RequestStatus

pytestmark = pytest.mark.django_db

FIXED_LABELS = {
    "aipbx_knowledge_documents": ("status", set(Status.values)),
    "aipbx_knowledge_extractions": ("result", set(ExtractionRun.RunStatus.values)),
    "aipbx_console_calls": ("state", set(CallState.values)),
    "aipbx_console_hitl_requests": ("status", set(RequestStatus.values)),
    "aipbx_webhook_deliveries": ("status", {"pending", "delivered", "dead"}),
}


TOKEN = "m3trics-t0ken"


@pytest.fixture(autouse=True)
def metrics_token(settings) -> None:
    settings.AIPBX_METRICS_TOKEN = TOKEN


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(response.content.decode())
        for s in f.samples
    }


def test_metrics_count_knowledge_documents_by_status_with_fixed_labels(client: Client) -> None:
    before = scrape(client)
    KnowledgeItem.objects.create(owner="1002", text="Printer is on floor 2.", status=Status.APPROVED)
    KnowledgeItem.objects.create(owner="1002", text="Closed on Sundays.")
    after = scrape(client)

    assert (
        after[("aipbx_knowledge_documents", (("status", "approved"),))]
        == before[("aipbx_knowledge_documents", (("status", "approved"),))] + 1
    )
    assert (
        after[("aipbx_knowledge_documents", (("status", "pending"),))]
        == before[("aipbx_knowledge_documents", (("status", "pending"),))] + 1
    )
    assert ("aipbx_console_hitl_open", ()) in after
    assert ("aipbx_webhook_deliveries", (("status", "dead"),)) in after
    for name, labels in after:
        if name in FIXED_LABELS:
            label, allowed = FIXED_LABELS[name]
            assert [k for k, _ in labels] == [label] and labels[0][1] in allowed | {"other", "none"}


def test_metrics_token_is_required(client: Client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization=f"Bearer {TOKEN}")


@override_settings(AIPBX_METRICS_TOKEN="")
def test_metrics_are_off_until_a_token_is_configured(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 403 and b"AIPBX_METRICS_TOKEN" in response.content
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


def _private_redis(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_status(client: Client, status: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == status:
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"/ready did not turn {status} within {timeout} s")


def test_ready_recovers_on_the_first_probe_after_redis_returns(client: Client) -> None:
    # given a Redis of this test's own (never the shared one)
    port = free_port()
    redis = _private_redis(port)
    try:
        with override_settings(AIPBX_REDIS_URL=f"redis://127.0.0.1:{port}/0"):
            _wait_status(client, 200, 5)
            # when it stops, /ready is 503 naming Redis
            redis.terminate()
            redis.wait(10)
            body = _wait_status(client, 503, 5)
            assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("error: ")
            # when it is back, the very next probes say ready again
            redis = _private_redis(port)
            assert _wait_status(client, 200, 5)["checks"] == {"postgres": "ok", "redis": "ok"}
    finally:
        redis.terminate()
        redis.wait(10)


def test_worker_metrics_server_counts_tasks_by_name_and_state(monkeypatch) -> None:
    from webconsole.core import worker_metrics
    from webconsole.core.tasks import ping_task

    port = free_port()
    monkeypatch.setenv("AIPBX_WORKER_METRICS_PORT", str(port))
    assert worker_metrics.serve() == port
    # when a task runs (its signals fire as on a worker)
    ping_task.apply()
    # then the worker's /metrics counts it under its registered name
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    name = "webconsole.core.tasks.ping_task"
    assert samples[("aipbx_worker_tasks_total", (("state", "SUCCESS"), ("task", name)))] >= 1
    assert samples[("aipbx_worker_task_seconds_count", (("task", name),))] >= 1


def test_worker_metrics_off_with_port_zero(monkeypatch) -> None:
    from webconsole.core import worker_metrics

    monkeypatch.setenv("AIPBX_WORKER_METRICS_PORT", "0")
    assert worker_metrics.serve() is None
