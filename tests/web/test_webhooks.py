"""Webhooks: outbox written with the fact, signed POSTs to a real loopback receiver, retries, dead letters.

Real PostgreSQL (``transaction=True``, so ``on_commit`` fires as in production) and a real aiohttp
receiver in a thread. The Celery queueing is replaced by a recorder (``queued``): the tests then
run the task's body (``delivery.attempt``) themselves, with a frozen ``now`` where timing matters.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from tests.fakes.threaded import ServerThread
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.web.calls_factory import PASSWORD, event, make_user
from webconsole.calls.actions import do_set_presence
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Call, Presence, Role
from webconsole.webhooks import delivery, tasks
from webconsole.webhooks.actions import call_failed, emit
from webconsole.webhooks.models import Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint
from webconsole.webhooks.signing import mask_number

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "webconsole" / "README.md"
CDR = {
    "caller": "01012345678",
    "callee": "1002",
    "start": "2026-11-25T01:00:00+00:00",
    "answer": "2026-11-25T01:00:10+00:00",
    "end": "2026-11-25T01:00:30+00:00",
    "ai_handled": True,
    "answered_by": "ai",
    "duration": 30.0,
    "billsec": 20.0,
    "dial_status": "NOANSWER",
    "hangup_by": "caller",
    "termination_reason": "caller_hangup",
}


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """The (delivery id, countdown) pairs handed to Celery after commits."""
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(tasks, "schedule", lambda delivery_id, countdown=0.0: calls.append((delivery_id, countdown)))
    return calls


@pytest.fixture
def receiver() -> Iterator[ServerThread[WebhookReceiver]]:
    with ServerThread(WebhookReceiver()) as thread:
        yield thread


def verifier() -> Callable[..., bool]:
    """The verification snippet exactly as ``webconsole/README.md`` documents it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [snippet] = [b for b in blocks if "def verify_aipbx_webhook" in b]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    return namespace["verify_aipbx_webhook"]


def sent_headers(receiver: WebhookReceiver, index: int = -1) -> dict[str, str]:
    raw = receiver.requests[index].headers
    return {
        name: raw[name.lower()]
        for name in ("X-AIPBX-Event", "X-AIPBX-Delivery", "X-AIPBX-Timestamp", "X-AIPBX-Signature")
    }


def endpoint(url: str, **fields: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=fields.pop("name", "crm"), url=url, **fields)


def start_call(call_id: str, caller: str = "01012345678") -> None:
    apply_event(event("call.started", call_id, caller=caller, callee="1002", start="2026-11-25T01:00:00+00:00"))


def only_delivery(event_type: str) -> Delivery:
    return Delivery.objects.select_related("event", "endpoint").get(event__type=event_type)


def test_signed_post_verifies_with_the_documented_snippet(receiver: Any, queued: list) -> None:
    # given
    hook = endpoint(receiver.server.url)
    # when
    start_call("c-sign")
    sent = only_delivery("call_started")
    outcome = delivery.attempt(sent.pk)
    # then
    assert queued == [(sent.pk, 0.0)]  # on_commit queued exactly this delivery
    assert outcome == "delivered"
    body, headers = receiver.server.bodies[0], sent_headers(receiver.server)
    payload = json.loads(body)
    assert payload["event"] == headers["X-AIPBX-Event"] == "call_started"
    assert payload["id"] == headers["X-AIPBX-Delivery"] == str(sent.event.uuid)
    assert payload["data"]["call_id"] == "c-sign" and payload["data"]["callee"] == "1002"
    assert payload["occurred_at"].startswith("20")
    verify = verifier()
    assert verify(hook.secret, headers, body)
    assert not verify("whsec_not-the-secret", headers, body)
    assert not verify(hook.secret, headers, body.replace(b"c-sign", b"c-fake"))
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 40


def test_subscription_filter_and_inactive_endpoints(queued: list) -> None:
    # given
    ended_only = endpoint("http://127.0.0.1:9/a", name="ended-only", events=["call_ended"])
    everything = endpoint("http://127.0.0.1:9/b", name="everything")
    endpoint("http://127.0.0.1:9/c", name="off", active=False)
    # when
    start_call("c-sub")
    apply_event(event("call.answered", "c-sub", answered_by="ai", ai=True))
    apply_event(event("call.ended", "c-sub", cdr=CDR))
    # then
    sent = Counter(Delivery.objects.values_list("endpoint__name", "event__type"))
    assert sent == {
        ("ended-only", "call_ended"): 1,
        ("everything", "call_started"): 1,
        ("everything", "ai_activated"): 1,
        ("everything", "call_ended"): 1,
    }
    assert sorted(pk for pk, _ in queued) == sorted(Delivery.objects.values_list("pk", flat=True))
    assert ended_only.deliveries.count() == 1 and everything.deliveries.count() == 3


def test_rolled_back_ingest_emits_nothing_and_replays_emit_once(queued: list) -> None:
    endpoint("http://127.0.0.1:9/hook")
    started = event("call.started", "c-tx", caller="01012345678", callee="1002")
    # a failure later in the ingest transaction takes the event with it
    with pytest.raises(RuntimeError), transaction.atomic():
        apply_event(started)
        assert OutboxEvent.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("database trouble after the insert")
    assert OutboxEvent.objects.count() == 0 and Delivery.objects.count() == 0 and queued == []  # ...and gone
    # the same stream entry applied for real, then replayed
    assert apply_event(started) is True
    assert apply_event(started) is False
    start_call("c-tx")  # a second call.started of the same call (new event id) is the same fact
    assert OutboxEvent.objects.count() == 1 and len(queued) == 1


@pytest.mark.parametrize(
    ("reason", "dial_status", "answered", "failed"),
    [
        ("caller_hangup", "NOANSWER", True, False),  # AI-answered call, ended normally
        ("not_answered", "NOANSWER", False, False),  # a missed call is not a failure
        ("not_answered", "BUSY", False, False),
        ("not_answered", "CHANUNAVAIL", False, True),
        ("not_answered", "CONGESTION", False, True),
        ("error", "", True, True),
        ("app_restart", "NOANSWER", True, True),
        ("asterisk_restart", "ANSWER", True, True),  # Asterisk went down under the call
        ("events_lost", "NOANSWER", True, False),  # the call went on; only its end was not seen
        ("limit_per_caller", "NOANSWER", False, True),  # turned away at an AI call cap: never served
        ("limit_total", "CHANUNAVAIL", False, True),
        ("rtp_timeout", "NOANSWER", True, False),  # served, then ended by the silence watchdog
    ],
)
def test_call_failed_reads_the_cdr(reason: str, dial_status: str, answered: bool, failed: bool) -> None:
    assert call_failed(reason, dial_status, answered) is failed


def test_unreachable_callee_is_call_failed(queued: list) -> None:
    endpoint("http://127.0.0.1:9/hook")
    cdr = {
        **CDR,
        "answer": None,
        "ai_handled": False,
        "answered_by": None,
        "dial_status": "CHANUNAVAIL",
        "termination_reason": "not_answered",
        "billsec": 0.0,
    }
    apply_event(event("call.ended", "c-fail", cdr=cdr))
    [sent] = OutboxEvent.objects.all()
    assert sent.type == "call_failed"
    assert sent.payload["dial_status"] == "CHANUNAVAIL" and sent.payload["termination_reason"] == "not_answered"


def test_500_twice_then_200_is_delivered_after_growing_delays(receiver: Any, queued: list, settings: Any) -> None:
    # given
    settings.AIPBX_WEBHOOK_BACKOFF_BASE_S = 10.0
    receiver.server.statuses = [500, 500]
    endpoint(receiver.server.url)
    start_call("c-retry")
    pk, now = only_delivery("call_started").pk, timezone.now()
    delays = []
    # when
    for expected in ("retry", "retry"):
        assert delivery.attempt(pk, now=now) == expected
        assert delivery.attempt(pk, now=now) == "not_due"  # the queued retry and the sweep both wait
        due = Delivery.objects.get(pk=pk).next_attempt_at
        delays.append((due - now).total_seconds())
        now = due
    assert delivery.attempt(pk, now=now) == "delivered"
    # then
    sent = Delivery.objects.get(pk=pk)
    assert sent.status == DeliveryStatus.DELIVERED and sent.attempts == 3 and sent.last_status_code == 200
    assert sent.last_error == "" and sent.delivered_at == now
    assert 10.0 <= delays[0] <= 11.0 and 20.0 <= delays[1] <= 22.0  # 10 s, 20 s, up to 10 % jitter
    assert [round(c, 6) for _, c in queued[1:]] == [round(d, 6) for d in delays]  # retries queued with countdown
    ids = {r.headers["x-aipbx-delivery"] for r in receiver.server.requests}
    assert len(receiver.server.requests) == 3 and len(ids) == 1  # one idempotency key for every attempt


def test_always_500_goes_dead_shows_first_on_the_page_and_retry_requeues(
    receiver: Any, queued: list, client: Client
) -> None:
    # given: one delivery that succeeds, then one that always fails
    endpoint(receiver.server.url)
    start_call("c-ok")
    assert delivery.attempt(only_delivery("call_started").pk) == "delivered"
    receiver.server.statuses = [500] * 4
    apply_event(event("call.answered", "c-ok", answered_by="ai", ai=True))
    pk, now, outcomes = only_delivery("ai_activated").pk, timezone.now(), []
    # when
    while (row := Delivery.objects.get(pk=pk)).status == DeliveryStatus.PENDING:
        outcomes.append(delivery.attempt(pk, now=max(now, row.next_attempt_at)))
    # then
    dead = Delivery.objects.get(pk=pk)
    assert outcomes == ["retry", "retry", "retry", "dead"] and dead.attempts == 4
    assert dead.status == DeliveryStatus.DEAD and dead.last_status_code == 500 and "HTTP 500" in dead.last_error
    assert delivery.attempt(pk, now=now + timedelta(hours=1)) == "done"  # a late task changes nothing
    admin = make_user("boss", role=Role.ADMIN)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)
    page = browser.get("/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r'data-delivery="(\d+)" data-status="(\w+)"', html)
    assert rows[0] == (str(pk), "dead") and ("dead", "delivered") == (rows[0][1], rows[1][1])
    assert "HTTP 500" in html and 'href="/webhooks/"' in html  # the error, and the admins' nav link
    # the retry button is a CSRF-protected POST
    assert browser.post(f"/webhooks/deliveries/{pk}/retry").status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    queued.clear()
    response = browser.post(f"/webhooks/deliveries/{pk}/retry", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    again = Delivery.objects.get(pk=pk)
    assert again.status == DeliveryStatus.PENDING and again.attempts == 0 and queued == [(pk, 0.0)]
    assert delivery.attempt(pk) == "delivered"  # the receiver recovered


def test_receiver_down_is_retried(receiver: Any, queued: list, closed_port: int) -> None:
    hook = endpoint(f"http://127.0.0.1:{closed_port}/hook")
    start_call("c-down")
    pk = only_delivery("call_started").pk
    assert delivery.attempt(pk) == "retry"
    failed = Delivery.objects.get(pk=pk)
    assert failed.last_status_code is None and "ConnectError" in failed.last_error and failed.attempts == 1
    hook.url = receiver.server.url  # the receiver comes back (at its new address)
    hook.save()
    assert delivery.sweep(now=failed.next_attempt_at) == {"delivered": 1}
    assert len(receiver.server.requests) == 1


def test_lost_task_is_delivered_by_the_sweep_exactly_once(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the process died between the commit and queueing the task
    monkeypatch.setattr(tasks, "schedule", lambda *args: None)
    endpoint(receiver.server.url)
    start_call("c-lost")
    assert receiver.server.requests == []
    # when
    call_command("deliver_webhooks", "--once")
    call_command("deliver_webhooks", "--once")
    assert delivery.attempt(only_delivery("call_started").pk) == "done"  # the task arriving late
    # then
    assert len(receiver.server.requests) == 1
    assert only_delivery("call_started").status == DeliveryStatus.DELIVERED


def test_two_sweeps_at_once_post_once(queued: list) -> None:
    with ServerThread(WebhookReceiver(stall_s=0.5)) as slow:
        endpoint(slow.server.url)
        start_call("c-race")
        barrier, outcomes = threading.Barrier(2), Counter()

        def sweeper() -> None:
            try:
                barrier.wait(timeout=5)
                outcomes.update(delivery.sweep())
            finally:
                connection.close()  # each thread had its own database connection

        threads = [threading.Thread(target=sweeper) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        assert len(slow.server.requests) == 1
    assert outcomes["delivered"] == 1 and outcomes["locked"] + outcomes["done"] + outcomes["not_due"] <= 1
    assert only_delivery("call_started").attempts == 1


def test_no_transaction_or_row_lock_is_held_while_a_receiver_takes_its_time(queued: list) -> None:
    with ServerThread(WebhookReceiver(stall_s=30)) as slow:
        endpoint(slow.server.url)
        start_call("c-slow")
        pk = only_delivery("call_started").pk
        outcome: list[str] = []

        def deliver() -> None:
            try:
                outcome.append(delivery.attempt(pk))
            finally:
                connection.close()

        worker = threading.Thread(target=deliver)
        worker.start()
        try:
            # when the POST has reached the receiver, which holds it
            deadline = timezone.now() + timedelta(seconds=20)
            while not slow.server.bodies and timezone.now() < deadline:
                threading.Event().wait(0.05)
            assert slow.server.bodies, "the POST never arrived"
            # then the row can be locked at once by someone else, and no session sits in a transaction
            with transaction.atomic():
                Delivery.objects.select_for_update(nowait=True).get(pk=pk)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
                )
                assert cursor.fetchone()[0] == 0
            # and a second attempt (the sweep) does not send it again while the first one runs
            assert delivery.attempt(pk) == "not_due"
        finally:
            worker.join(timeout=60)  # the POST times out (AIPBX_WEBHOOK_TIMEOUT_S) and is recorded
    assert outcome == ["retry"]
    assert only_delivery("call_started").attempts == 1


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("01012345678", "*******5678"),
        ("+82-10-1234-5678", "+**-**-****-5678"),
        ("1001", "1001"),
        ("", ""),
    ],
)
def test_mask_number_keeps_last_four_digits(number: str, masked: str) -> None:
    assert mask_number(number) == masked


def test_caller_numbers_are_masked_unless_the_endpoint_opts_in(receiver: Any, queued: list) -> None:
    endpoint(receiver.server.url, name="masked")
    endpoint(receiver.server.url, name="full", include_full_numbers=True)
    start_call("c-mask", caller="01012345678")
    for pk in Delivery.objects.values_list("pk", flat=True):
        assert delivery.attempt(pk) == "delivered"
    callers = sorted(json.loads(body)["data"]["caller"] for body in receiver.server.bodies)
    assert callers == ["*******5678", "01012345678"]
    assert OutboxEvent.objects.get().payload["caller"] == "01012345678"  # masked per endpoint when sent


def test_hitl_events_carry_no_question_text(queued: list) -> None:
    endpoint("http://127.0.0.1:9/hook")
    operator = make_user("op", extensions=("1002",))
    do_set_presence(operator.operator, Presence.AVAILABLE)
    start_call("c-hitl")
    apply_event(
        event(
            "hitl.requested",
            "c-hitl",
            request_id="r-1",
            question="My card 4111 1111 1111 1111?",
            reason="low_confidence",
        )
    )
    apply_event(event("hitl.spoken", "c-hitl", request_id="r-1", text="We will call you back."))
    apply_event(event("hitl.spoken", "c-hitl", request_id="r-1", text="We will call you back."))
    events = {e.type: e.payload for e in OutboxEvent.objects.all()}
    assert set(events) == {"call_started", "hitl_requested", "hitl_resolved"}
    assert events["hitl_requested"]["request_id"] == "r-1" and events["hitl_requested"]["status"] == "waiting"
    assert events["hitl_resolved"]["status"] == "delivered" and events["hitl_resolved"]["delivered_at"]
    assert "4111" not in json.dumps(events) and "call you back" not in json.dumps(events)


def test_knowledge_extraction_with_items_emits_once(queued: list, settings: Any, tmp_path: Path) -> None:
    from knowledge.actions import reset_retriever
    from knowledge.tasks import run_extraction
    from tests.knowledge_app.conftest import PHONE_CALL_TURNS, write_call

    settings.AIPBX_KNOWLEDGE_STORE, settings.AIPBX_KNOWLEDGE_PREFIX = "memory", "kbwebhooks"
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV, settings.AIPBX_KNOWLEDGE_JUDGE = "local", {}, "auto"
    reset_retriever()
    try:
        endpoint("http://127.0.0.1:9/hook", events=["knowledge_extracted"])
        write_call(tmp_path, "c-kb", PHONE_CALL_TURNS)
        created = run_extraction("c-kb")["items_created"]
        run_extraction("c-kb")  # already done: nothing new
    finally:
        reset_retriever()
    # (the call itself, stored as the console's consumer stores it, has its own call_* events)
    [extracted] = OutboxEvent.objects.filter(type="knowledge_extracted")
    assert created > 0 and extracted.payload == {"call_id": "c-kb", "owner": "1002", "items_created": created}
    assert Delivery.objects.count() == 1


def test_page_is_for_admins_only(client: Client) -> None:
    assert client.get("/webhooks/")["Location"].startswith("/accounts/login/")
    make_user("op2", extensions=("1002",))
    client.login(username="op2", password=PASSWORD)
    assert client.get("/webhooks/").status_code == 403
    assert client.post("/webhooks/deliveries/1/retry").status_code == 403
    assert 'href="/webhooks/"' not in client.get("/").content.decode()


def test_sweep_runs_every_30_s_from_celery_beat(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-sweep"]
    assert entry["task"] == tasks.sweep_webhooks_task.name and entry["schedule"] == 30.0


def test_emit_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit("call_exploded", key="x", data={})


def test_admin_shows_the_secret_once_and_retries_dead_deliveries(queued: list) -> None:
    # given
    admin = make_user("root", role=Role.ADMIN)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    # when: an endpoint is added
    added = browser.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"name": "crm", "url": "http://127.0.0.1:9/hook", "events": '["call_ended"]', "active": "on"},
        follow=True,
    )
    hook = WebhookEndpoint.objects.get()
    # then: its secret appears in that response only
    assert hook.secret in added.content.decode()
    assert hook.secret not in browser.get(f"/admin/webhooks/webhookendpoint/{hook.pk}/change/").content.decode()
    # a dead delivery is retried by the admin action
    with transaction.atomic():
        emit("call_ended", key="c-admin", data={"call_id": "c-admin"})
    Delivery.objects.update(status=DeliveryStatus.DEAD, attempts=4)
    pk = Delivery.objects.get().pk
    browser.post("/admin/webhooks/delivery/", {"action": "retry_dead", "_selected_action": [pk]})
    assert Delivery.objects.get(pk=pk).status == DeliveryStatus.PENDING and queued[-1] == (pk, 0.0)


def test_a_caller_put_through_to_an_operator_is_a_call_transferred_event_once(queued: list) -> None:
    from webconsole.calls.models import Transfer

    endpoint("http://127.0.0.1:9/hook")
    kim = make_user("kim", role=Role.OPERATOR, extensions=("1002",))
    apply_event(event("call.started", "c-xfer", caller="01012345678", callee="1002", start=CDR["start"]))
    apply_event(event("call.answered", "c-xfer", answered_by="ai", ai=True))
    call = Call.objects.get(call_id="c-xfer")
    Transfer.objects.create(transfer_id="x1", call=call, operator=kim, operator_ext="1003", mode="listen")
    for status in ("ringing", "listening", "connected"):
        apply_event(event("transfer.status", "c-xfer", transfer_id="x1", status=status))
    apply_event(event("transfer.status", "c-xfer", transfer_id="x1", status="connected"))  # replayed
    [sent] = OutboxEvent.objects.filter(type="call_transferred")
    assert (sent.payload["mode"], sent.payload["operator"], sent.payload["operator_ext"]) == ("listen", "kim", "1003")
    assert sent.payload["call_id"] == "c-xfer" and sent.payload["answered"] is not None
