"""The live console websockets: login required, a user joins only their extensions' calls, state first."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from tests.web.calls_factory import ai_call_events, event, make_user
from webconsole.calls.ingest import apply_event
from webconsole.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

router = URLRouter(websocket_urlpatterns)


async def connect(path: str, user) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(router, path)
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.parametrize("path", ["/ws/live/", "/ws/calls/c1/"])
async def test_anonymous_sockets_are_closed(path) -> None:
    communicator, connected, code = await connect(path, AnonymousUser())
    assert (connected, code) == (False, 4401)


async def test_an_operator_cannot_watch_another_extensions_call() -> None:
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    await sync_to_async(apply_event)(event("call.started", "theirs", caller="1001", callee="1003"))
    for path in ("/ws/calls/theirs/", "/ws/calls/no-such-call/"):
        communicator, connected, code = await connect(path, user)
        assert (connected, code) == (False, 4404)


async def test_the_call_socket_sends_the_state_then_each_new_turn() -> None:
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    entries = ai_call_events("c1")
    for entry in entries[:4]:  # started, answered, state, greeting
        await sync_to_async(apply_event)(entry)
    communicator, connected, _ = await connect("/ws/calls/c1/", user)
    try:
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot" and snapshot["call"]["state"] == "ai"
        assert [t["speaker"] for t in snapshot["turns"]] == ["ai"]
        # when: the caller's interim and final transcript arrive
        await sync_to_async(apply_event)(entries[4])
        await sync_to_async(apply_event)(entries[5])
        interim = await communicator.receive_json_from(timeout=5)
        final = await communicator.receive_json_from(timeout=5)
        # then
        assert interim["event"]["data"] == {"speaker": "caller", "text": "When is the team", "final": False, "t": 3.1}
        assert interim["turn"] is None
        assert final["turn"]["text"] == "When is the team meeting?" and final["turn"]["speaker"] == "caller"
    finally:
        await communicator.disconnect()


async def test_the_live_socket_carries_only_my_extensions_calls() -> None:
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    await sync_to_async(apply_event)(event("call.started", "before", caller="1001", callee="1002"))
    communicator, connected, _ = await connect("/ws/live/", user)
    try:
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        assert [c["call_id"] for c in snapshot["calls"]] == ["before"]
        await sync_to_async(apply_event)(event("call.started", "theirs", caller="1001", callee="1003"))
        await sync_to_async(apply_event)(event("call.started", "mine", caller="1001", callee="1002"))
        message = await communicator.receive_json_from(timeout=5)
        assert message["call"]["call_id"] == "mine"
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_an_admin_hears_every_call() -> None:
    user = await sync_to_async(make_user)("boss", role="admin")
    communicator, connected, _ = await connect("/ws/live/", user)
    try:
        assert connected
        await communicator.receive_json_from(timeout=5)
        await sync_to_async(apply_event)(event("call.started", "any", caller="1001", callee="1004"))
        assert (await communicator.receive_json_from(timeout=5))["call"]["callee"] == "1004"
    finally:
        await communicator.disconnect()


async def test_the_dashboard_socket_carries_the_reply_as_it_is_spoken_and_the_confidence() -> None:
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    for entry in ai_call_events("speaking")[:6]:
        await sync_to_async(apply_event)(entry)
    await sync_to_async(apply_event)(
        event("retrieval", "speaking", question="When?", t=3.1, confidence=0.9, results=[])
    )
    await sync_to_async(apply_event)(event("reply.speaking", "speaking", t=4.0, text="On Tuesday."))
    communicator, connected, _ = await connect("/ws/live/", user)
    try:
        assert connected
        # the state on connect already has the reply being spoken
        [call] = (await communicator.receive_json_from(timeout=5))["calls"]
        assert (call["ai_confidence"], call["ai_reply"], call["ai_speaking"]) == (0.9, "On Tuesday.", True)
        # when the next sentence starts to play, then the page hears of it at once
        await sync_to_async(apply_event)(event("reply.speaking", "speaking", t=4.0, text="On Tuesday. At 10."))
        message = await communicator.receive_json_from(timeout=5)
        assert message["event"]["type"] == "reply.speaking" and message["turn"] is None
        assert (message["call"]["ai_reply"], message["call"]["ai_speaking"]) == ("On Tuesday. At 10.", True)
    finally:
        await communicator.disconnect()
