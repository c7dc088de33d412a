"""Operator presence that tells the truth: a chosen status counts only while a console socket answers.

The sockets are the real consumers (Channels' communicator, Redis channel layer); the clock is moved
with time-machine to just before and just after the timeout counted from the stored heartbeat, so no
assertion rides on wall-clock margins.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
import time_machine
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.web.calls_factory import PASSWORD, event, make_user
from webconsole.calls import presence
from webconsole.calls.actions import do_set_presence
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Operator, Presence
from webconsole.hitl.models import HitlRequest
from webconsole.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

router = URLRouter(websocket_urlpatterns)
TIMEOUT_S = 60.0


@pytest.fixture(autouse=True)
def presence_settings(settings: Any) -> Any:
    settings.AIPBX_PRESENCE_TIMEOUT_S = TIMEOUT_S
    settings.AIPBX_PRESENCE_HEARTBEAT_S = 20.0
    # HITL replies of this test's own, under the session's Redis user (instances named "test*")
    settings.AIPBX_INSTANCE = f"test-presence{time.monotonic_ns()}"
    yield settings
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    for key in client.scan_iter(f"aipbx:{settings.AIPBX_INSTANCE}:hitl:*"):
        client.delete(key)
    client.close()


def chose_available(name: str = "kim") -> Any:
    """An operator of 1002 who chose "available" but has no console page (no heartbeat yet)."""
    user = make_user(name, extensions=("1002",))
    Operator.objects.filter(user=user).update(status=Presence.AVAILABLE, last_seen=None)
    return user


def ask(call_id: str) -> str:
    """A caller of 1002 waits for a person: the HITL decision, ``waiting`` (queued) or ``away``."""
    apply_event(event("call.started", call_id, caller="01055550000", callee="1002"))
    apply_event(
        event(
            "hitl.requested",
            call_id,
            request_id=f"r-{call_id}",
            question="Is the shop open?",
            reason="low_confidence",
            callee="1002",
        )
    )
    return HitlRequest.objects.get(request_id=f"r-{call_id}").status


async def open_page(user: Any) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(router, "/ws/live/")  # any console socket; the dashboard's here
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    return communicator


def last_seen(user: Any) -> Any:
    return Operator.objects.get(user=user).last_seen


async def test_a_vanished_operator_is_offline_within_the_timeout_and_hitl_then_says_away() -> None:
    # given: an operator who chose "available" is on duty only once a console page of theirs is alive
    kim = await sync_to_async(chose_available)()
    assert await sync_to_async(ask)("before") == "away"
    page = await open_page(kim)
    seen = await sync_to_async(last_seen)(kim)
    assert seen is not None

    # when: the page vanishes without a goodbye: the socket is never closed and answers no heartbeat
    # (a laptop lid shut, a cable pulled); only the clock goes on
    try:
        with time_machine.travel(seen + timedelta(seconds=TIMEOUT_S - 1), tick=False):
            still_there = await sync_to_async(ask)("just-before")
        with time_machine.travel(seen + timedelta(seconds=TIMEOUT_S + 1), tick=False):
            gone = await sync_to_async(ask)("just-after")
            operator = await sync_to_async(Operator.objects.get)(user=kim)
            shown = presence.effective(operator)
    finally:
        await page.disconnect()

    # then: held for while the heartbeat counts, away as soon as it no longer does
    assert still_there == "waiting"
    assert gone == "away"
    assert (operator.status, shown) == (Presence.AVAILABLE, Presence.OFFLINE)  # the choice is kept


async def test_the_server_asks_every_socket_for_heartbeats_and_each_answer_keeps_the_operator_on_duty(
    settings: Any,
) -> None:
    # given: a short interval, so the test sees several rounds
    settings.AIPBX_PRESENCE_HEARTBEAT_S = 0.2
    kim = await sync_to_async(chose_available)()
    page = await open_page(kim)
    first = await sync_to_async(last_seen)(kim)
    try:
        # when: the page answers the server's pings, as console/live.js does
        for _ in range(3):
            assert await page.receive_json_from(timeout=5) == {"type": "presence.ping"}
            await page.send_json_to({"type": "heartbeat"})
        # then: the heartbeats are stored (once each round at most)
        deadline = time.monotonic() + 5
        while (latest := await sync_to_async(last_seen)(kim)) == first:
            assert time.monotonic() < deadline, "no heartbeat was stored"
            await asyncio.sleep(0.05)
    finally:
        await page.disconnect()
    assert latest > first
    # and: counted from the latest heartbeat, the operator is on duty for the whole timeout
    with time_machine.travel(latest + timedelta(seconds=TIMEOUT_S - 1), tick=False):
        assert await sync_to_async(ask)("kept") == "waiting"


async def test_what_a_page_says_besides_heartbeats_is_ignored() -> None:
    kim = await sync_to_async(chose_available)()
    page = await open_page(kim)
    try:
        await page.send_to(text_data="{not json")
        await page.send_to(bytes_data=b"\x00\x01")
        await page.send_json_to({"type": "claim", "request_id": "r1"})
        await page.send_json_to(["heartbeat"])
        assert await page.receive_nothing(timeout=0.3)
        await page.send_json_to({"type": "heartbeat"})  # still open and listening
        assert await page.receive_nothing(timeout=0.1)
    finally:
        await page.disconnect()


def test_the_operators_page_and_the_api_show_a_silent_operator_offline() -> None:
    # given: kim chose "available" a minute and more ago and no page of hers answered since
    kim = make_user("kim", extensions=("1002",))
    do_set_presence(kim.operator, Presence.AVAILABLE)
    seen = last_seen(kim)
    client = Client()
    client.login(username="kim", password=PASSWORD)
    # then: within the timeout she is available, after it offline, and her choice is still shown
    with time_machine.travel(seen + timedelta(seconds=TIMEOUT_S - 1), tick=False):
        page = client.get("/operators/").content.decode()
        assert 'data-presence="available"' in page
        assert client.get("/api/v1/operators/me").json()["presence"] == "available"
    with time_machine.travel(seen + timedelta(seconds=TIMEOUT_S + 1), tick=False):
        page = client.get("/operators/").content.decode()
        assert 'data-presence="offline"' in page and "no console open" in page
        me = client.get("/api/v1/operators/me").json()
        assert (me["status"], me["presence"]) == ("available", "offline")
        # setting the status again (a page or an API client) is a heartbeat of its own
        response = client.put("/api/v1/operators/me", json.dumps({"status": "busy"}), content_type="application/json")
        assert response.json()["presence"] == "busy"
