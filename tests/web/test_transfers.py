"""'Take this call': an operator puts an AI call through to their own phone (webconsole.calls.transfers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import Client

from tests.web.calls_factory import PASSWORD, event, make_user
from webconsole.calls.actions import do_set_presence
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Call, HitlStatus, Presence, Transfer, TransferStatus
from webconsole.hitl.models import HitlRequest, RequestStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lists(settings: Any) -> Iterator[redis.Redis]:
    """This test's own instance, so its own transfer and HITL reply lists."""
    settings.AIPBX_INSTANCE = f"testxfer{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    yield client
    for key in client.scan_iter(f"aipbx:{settings.AIPBX_INSTANCE}:*"):
        client.delete(key)
    client.close()


def pushed(client: redis.Redis, key: str = "transfers") -> list[dict[str, Any]]:
    from django.conf import settings

    return [json.loads(raw) for raw in client.lrange(f"aipbx:{settings.AIPBX_INSTANCE}:{key}", 0, -1)]


def operator(name: str, *extensions: str, phone: str = "", status: str = Presence.AVAILABLE) -> Any:
    user = make_user(name, extensions=extensions)
    user.operator.extension = phone
    user.operator.save()
    do_set_presence(user.operator, status)
    return user


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def ai_call(call_id: str, callee: str = "1002") -> Call:
    apply_event(event("call.started", call_id, caller="1001", callee=callee, start="2026-11-25T01:00:00+00:00"))
    apply_event(event("call.answered", call_id, answered_by="ai", ai=True))
    return Call.objects.get(call_id=call_id)


def ask(call_id: str, request_id: str, reason: str, question: str = "Can I talk to a real person?") -> None:
    apply_event(
        event("hitl.requested", call_id, request_id=request_id, question=question, reason=reason, callee="1002")
    )


def test_take_this_call_rings_the_operators_phone_and_follows_the_ari_apps_progress(lists) -> None:
    # given
    kim = operator("kim", "1002", phone="1003")
    call = ai_call("c1")
    client = login(kim)
    # when
    page = client.post("/calls/c1/take", follow=True).content.decode()
    # then
    transfer = Transfer.objects.get()
    assert (transfer.call, transfer.operator, transfer.operator_ext) == (call, kim, "1003")
    [request] = pushed(lists)
    assert (request["call_id"], request["operator_ext"], request["transfer_id"]) == ("c1", "1003", transfer.transfer_id)
    assert "Your phone (1003) rings" in page and 'id="transfer-status"' in page
    # when the ARI app reports
    apply_event(event("transfer.status", "c1", transfer_id=transfer.transfer_id, status="ringing"))
    apply_event(event("transfer.status", "c1", transfer_id=transfer.transfer_id, status="connected"))
    apply_event(event("call.answered", "c1", answered_by="ai,1003", ai=True))
    # then
    transfer.refresh_from_db()
    call.refresh_from_db()
    assert transfer.status == TransferStatus.CONNECTED and transfer.connected is not None
    assert call.answered_by == "ai,1003" and call.ai_handled
    # a second click while it is under way is refused, nothing more is sent
    page = client.post("/calls/c1/take", follow=True).content.decode()
    assert "already being put through" in page and len(pushed(lists)) == 1


def test_a_failed_transfer_is_explained_and_the_call_can_be_taken_again(lists) -> None:
    kim = operator("kim", "1002", phone="1003")
    ai_call("c2")
    client = login(kim)
    client.post("/calls/c2/take")
    transfer = Transfer.objects.get()
    apply_event(
        event("transfer.status", "c2", transfer_id=transfer.transfer_id, status="failed", reason="operator_no_answer")
    )
    page = client.get("/calls/c2/").content.decode()
    assert 'id="transfer-error"' in page and "Your phone did not answer; the caller is back with the AI." in page
    client.post("/calls/c2/take")
    assert Transfer.objects.count() == 2 and len(pushed(lists)) == 2


@pytest.mark.parametrize(
    ("phone", "ended", "message"),
    [
        ("", False, "You have no phone extension to ring"),
        ("1003", True, "Only a call the AI is answering now can be taken"),
    ],
)
def test_a_call_that_cannot_be_taken_says_why_and_sends_nothing(lists, phone, ended, message) -> None:
    kim = operator("kim", "1002", phone=phone)
    ai_call("c3")
    if ended:
        apply_event(event("call.ended", "c3", cdr={"answered_by": "ai", "termination_reason": "caller_hangup"}))
    page = login(kim).post("/calls/c3/take", follow=True).content.decode()
    assert message in page and not Transfer.objects.exists() and pushed(lists) == []


def test_an_operator_cannot_take_another_extensions_call(lists) -> None:
    lee = operator("lee", "1004", phone="1005")
    ai_call("c4", callee="1002")
    assert login(lee).post("/calls/c4/take").status_code == 404
    assert pushed(lists) == []


def test_the_live_page_and_the_help_request_offer_the_button_only_while_the_ai_talks(lists) -> None:
    kim = operator("kim", "1002", phone="1003")
    ai_call("c5")
    ask("c5", "r5", "low_confidence", "When is the meeting?")
    client = login(kim)
    assert 'id="take-call"' in client.get("/calls/c5/").content.decode()
    assert 'id="take-call"' in client.get("/hitl/r5/").content.decode()
    apply_event(event("call.ended", "c5", cdr={"answered_by": "ai"}))
    assert 'id="take-call"' not in client.get("/calls/c5/").content.decode()


def test_taking_the_call_closes_its_open_help_request(lists) -> None:
    # the earlier attempt's leftover: a click during the hold decision left the request waiting forever
    kim = operator("kim", "1002", phone="1003")
    ai_call("c6")
    ask("c6", "r6", "low_confidence", "When is the meeting?")
    assert HitlRequest.objects.get().status == RequestStatus.WAITING
    login(kim).post("/calls/c6/take", {"next": "/hitl/r6/"})
    request = HitlRequest.objects.get()
    assert request.status == RequestStatus.DELIVERED and "kim" in request.note
    assert Call.objects.get(call_id="c6").hitl_status == HitlStatus.RESOLVED
    # the ARI app's cancellation of the decision wait changes nothing more
    apply_event(event("hitl.cancelled", "c6", request_id="r6", why="transfer"))
    assert HitlRequest.objects.get().status == RequestStatus.DELIVERED


def test_a_click_before_the_help_request_arrives_still_closes_it(lists) -> None:
    kim = operator("kim", "1002", phone="1003")
    ai_call("c7")
    login(kim).post("/calls/c7/take")
    ask("c7", "r7", "low_confidence", "When is the meeting?")  # published by the AI just before the click
    request = HitlRequest.objects.get()
    assert request.status == RequestStatus.DELIVERED
    assert pushed(lists, "hitl:r7") == [{"kind": "transfer"}]


def test_a_caller_who_asks_for_a_person_is_put_through_to_an_available_operators_phone(lists) -> None:
    # given: one operator busy, one available with a phone, one available without a phone
    operator("busy", "1002", phone="1006", status=Presence.BUSY)
    operator("nophone", "1002")
    kim = operator("kim", "1002", phone="1003")
    ai_call("c8")
    # when
    ask("c8", "r8", "asked_for_person", "Can I talk to a real person about my refund?")
    # then
    transfer = Transfer.objects.get()
    assert (transfer.operator, transfer.operator_ext) == (kim, "1003")
    [request] = pushed(lists)
    assert request["question"] == "Can I talk to a real person about my refund?" and request["request_id"] == "r8"
    assert pushed(lists, "hitl:r8") == [{"kind": "transfer", "operator": "1003"}]
    assert HitlRequest.objects.get().status == RequestStatus.DELIVERED


@pytest.mark.parametrize("reason", ["asked_for_person", "low_confidence"])
def test_without_a_phone_on_duty_or_another_reason_the_help_request_waits_as_before(lists, reason) -> None:
    operator("nophone", "1002")
    if reason == "low_confidence":
        operator("kim", "1002", phone="1003")
    ai_call("c9")
    ask("c9", "r9", reason)
    assert not Transfer.objects.exists() and pushed(lists) == []
    assert pushed(lists, "hitl:r9")[0]["kind"] == "queued"


def test_listen_in_rings_the_operators_phone_keeps_the_help_request_open_then_take_over_closes_it(lists) -> None:
    # given an AI call with a help request waiting, and its operator with a phone
    kim = operator("kim", "1002", phone="1003")
    ai_call("c20")
    ask("c20", "r20", "low_confidence", "When is the meeting?")
    client = login(kim)
    page = client.get("/calls/c20/").content.decode()
    assert 'id="listen-in"' in page and 'id="take-over"' not in page
    # when the operator listens in
    page = client.post("/calls/c20/listen", follow=True).content.decode()
    # then their phone is rung in listen mode, and the AI (and its help request) go on
    transfer = Transfer.objects.get()
    assert (transfer.mode, transfer.operator_ext, transfer.operator) == ("listen", "1003", kim)
    [request] = pushed(lists)
    assert (request["mode"], request["transfer_id"], request["operator_ext"]) == (
        "listen",
        transfer.transfer_id,
        "1003",
    )
    assert "Nobody hears you" in page and 'id="take-over"' in page and 'id="take-call"' not in page
    assert HitlRequest.objects.get().status == RequestStatus.WAITING
    apply_event(event("transfer.status", "c20", transfer_id=transfer.transfer_id, status="listening"))
    page = client.get("/calls/c20/").content.decode()
    assert "Listening in" in page and 'id="take-over"' in page
    # a help request that arrives while someone only listens is not settled by it
    ask("c20", "r21", "low_confidence", "And on Friday?")
    assert HitlRequest.objects.get(request_id="r21").status == RequestStatus.WAITING
    # another operator cannot take over someone else's listen, nor start a second one
    park = operator("park", "1002", phone="1005")
    page = login(park).post("/calls/c20/take-over", follow=True).content.decode()
    assert "You are not listening in on this call" in page
    page = login(park).post("/calls/c20/listen", follow=True).content.decode()
    assert "An operator is listening in on this call" in page and len(pushed(lists)) == 1
    # when the listener takes over
    page = client.post("/calls/c20/take-over", follow=True).content.decode()
    # then the same transfer is taken over, and the caller's help requests are closed
    assert "You have the caller" in page
    take = pushed(lists)[1]
    assert (take["mode"], take["transfer_id"]) == ("take_over", transfer.transfer_id)
    assert {r.status for r in HitlRequest.objects.all()} == {RequestStatus.DELIVERED}
    apply_event(event("transfer.status", "c20", transfer_id=transfer.transfer_id, status="connected"))
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CONNECTED and transfer.connected is not None
    assert 'id="take-over"' not in client.get("/calls/c20/").content.decode()


def test_a_listen_that_ended_lets_the_call_be_listened_to_or_taken_again(lists) -> None:
    kim = operator("kim", "1002", phone="1003")
    ai_call("c21")
    client = login(kim)
    client.post("/calls/c21/listen")
    transfer = Transfer.objects.get()
    apply_event(event("transfer.status", "c21", transfer_id=transfer.transfer_id, status="ended"))
    page = client.get("/calls/c21/").content.decode()
    assert 'id="listen-in"' in page and 'id="take-call"' in page and 'id="take-over"' not in page
    assert "You are not listening in" in client.post("/calls/c21/take-over", follow=True).content.decode()
    assert len(pushed(lists)) == 1


def test_admins_see_transfers_and_listens_in_admin_read_only(lists) -> None:
    from django.contrib.auth.models import User

    from webconsole.calls.models import Role

    kim = operator("kim", "1002", phone="1003")
    ai_call("c22")
    login(kim).post("/calls/c22/listen")
    transfer = Transfer.objects.get()
    root = make_user("root", role=Role.ADMIN)
    User.objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    admin = login(root)
    listing = admin.get("/admin/calls/transfer/?mode=listen").content.decode()
    assert transfer.transfer_id in listing and "Listen in" in listing
    page = admin.get(f"/admin/calls/transfer/{transfer.pk}/change/").content.decode()
    assert 'name="status"' not in page and "1003" in page  # read-only: the ARI app's events set it


def test_the_api_gives_a_calls_transfers_and_listens(lists) -> None:
    kim = operator("kim", "1002", phone="1003")
    ai_call("c23")
    client = login(kim)
    client.post("/calls/c23/listen")
    transfer = Transfer.objects.get()
    apply_event(event("transfer.status", "c23", transfer_id=transfer.transfer_id, status="listening"))
    body = client.get("/api/v1/calls/c23/").json()
    [given] = body["transfers"]
    assert (given["transfer_id"], given["mode"], given["status"]) == (transfer.transfer_id, "listen", "listening")
    assert (given["operator"], given["operator_ext"]) == ("kim", "1003")
