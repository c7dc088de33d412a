"""A live page loses no event and shows none twice, whenever the event commits around the socket's connect.

An event is relayed after its commit. One that commits while a socket reads its state must still
reach the page (the socket joins its groups before it reads); one that the state already includes
but whose relay comes after the join must not be shown again (issue 17, item 4).
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from tests.web.calls_factory import ai_call_events, event, make_user
from webconsole.calls import live
from webconsole.calls.ingest import apply_event
from webconsole.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

router = URLRouter(websocket_urlpatterns)


async def connect(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(router, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def commit_while_the_state_is_read(monkeypatch: pytest.MonkeyPatch, entry: dict[str, str]) -> None:
    """Apply ``entry`` and relay it the moment the socket has read its state (at its first call summary).

    Before the socket sends its state it summarises the call rows it read; that is after the query,
    so ``entry`` is not in the state, and it has been sent to the groups before the socket goes on.
    """
    real_summary = live.call_summary
    done: list[bool] = []

    def summary(call: Any) -> dict[str, Any]:
        if not done:
            done.append(True)
            apply_event(entry)
            assert live.flush(), "the live relay did not send the update"
        return real_summary(call)

    monkeypatch.setattr(live, "call_summary", summary)


def held_back(monkeypatch: pytest.MonkeyPatch, entry: dict[str, str]) -> list[tuple[list[str], dict[str, Any]]]:
    """Apply ``entry`` but keep its live update: it is committed, its relay has not happened yet."""
    held: list[tuple[list[str], dict[str, Any]]] = []
    with monkeypatch.context() as patch:
        patch.setattr(live, "send", lambda groups, message: held.append((groups, message)))
        apply_event(entry)
    assert [message["type"] for _, message in held] == ["call.event"]
    return held


async def test_an_event_committed_while_the_dashboard_reads_its_state_reaches_it(monkeypatch) -> None:
    # given
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    await sync_to_async(apply_event)(event("call.started", "before", caller="1001", callee="1002"))
    commit_while_the_state_is_read(monkeypatch, event("call.started", "meanwhile", caller="1003", callee="1002"))
    # when
    communicator = await connect("/ws/live/", user)
    try:
        snapshot = await communicator.receive_json_from(timeout=5)
        # then: not in the state (read before it committed), so it must come live
        assert [c["call_id"] for c in snapshot["calls"]] == ["before"]
        message = await communicator.receive_json_from(timeout=5)
        assert (message["type"], message["call"]["call_id"]) == ("call.event", "meanwhile")
    finally:
        await communicator.disconnect()


async def test_a_turn_committed_while_the_call_page_reads_its_state_reaches_it(monkeypatch) -> None:
    # given: an AI call with its greeting
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    entries = ai_call_events("c1")
    for entry in entries[:4]:
        await sync_to_async(apply_event)(entry)
    commit_while_the_state_is_read(monkeypatch, entries[5])  # the caller's final transcript
    # when
    communicator = await connect("/ws/calls/c1/", user)
    try:
        snapshot = await communicator.receive_json_from(timeout=5)
        # then
        assert [t["speaker"] for t in snapshot["turns"]] == ["ai"]
        message = await communicator.receive_json_from(timeout=5)
        assert message["turn"]["text"] == "When is the team meeting?"
        assert message["event"]["seq"] is not None
    finally:
        await communicator.disconnect()


async def test_an_event_in_the_call_pages_state_is_not_sent_again(monkeypatch) -> None:
    # given: the caller's question is committed, its live update still on its way
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    entries = ai_call_events("c2")
    for entry in entries[:4]:
        await sync_to_async(apply_event)(entry)
    held = await sync_to_async(held_back)(monkeypatch, entries[5])
    communicator = await connect("/ws/calls/c2/", user)
    try:
        snapshot = await communicator.receive_json_from(timeout=5)
        assert [t["text"] for t in snapshot["turns"]][-1] == "When is the team meeting?"
        # when: the held update arrives after the socket joined, then the AI's answer
        live.send(*held[0])
        await sync_to_async(apply_event)(entries[7])
        # then: only the answer is sent; the question is shown once
        message = await communicator.receive_json_from(timeout=5)
        assert (message["event"]["type"], message["turn"]["speaker"]) == ("turn", "ai")
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_an_event_in_the_dashboards_state_is_not_sent_again(monkeypatch) -> None:
    # given: a call is answered, the update still on its way
    user = await sync_to_async(make_user)("op", extensions=("1002",))
    entries = ai_call_events("c3")
    await sync_to_async(apply_event)(entries[0])
    held = await sync_to_async(held_back)(monkeypatch, entries[1])
    communicator = await connect("/ws/live/", user)
    try:
        snapshot = await communicator.receive_json_from(timeout=5)
        assert [(c["call_id"], c["state"]) for c in snapshot["calls"]] == [("c3", "ai")]
        # when: the held update arrives late, then the call's next event
        live.send(*held[0])
        await sync_to_async(apply_event)(entries[2])
        # then
        message = await communicator.receive_json_from(timeout=5)
        assert (message["event"]["type"], message["call"]["conversation_state"]) == ("state", "listening")
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()
