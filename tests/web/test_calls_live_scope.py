"""An open console socket follows its user: logged out or reassigned, the live events stop within
seconds (issue 15, item 7). The sockets go through the real ASGI stack (session cookie, origin check)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client

from tests.web.calls_factory import event, make_user
from webconsole.asgi import application
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Extension
from webconsole.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_WITHIN_S = 10.0  # generous: the cut-off takes milliseconds after the signal


async def db(function, *args: Any) -> Any:
    def run() -> Any:
        try:
            return function(*args)
        finally:
            connections.close_all()  # the test database is dropped at the end

    return await sync_to_async(run)()


def logged_in(username: str, *extensions: str) -> Client:
    client = Client()
    client.force_login(make_user(username, extensions=extensions))
    return client


async def open_socket(path: str, client: Client) -> WebsocketCommunicator:
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    return communicator


async def closed_with(communicator: WebsocketCommunicator) -> int:
    """The code the server closed the socket with (within CLOSED_WITHIN_S), then the client side ends too."""
    message = await communicator.receive_output(timeout=CLOSED_WITHIN_S)
    assert message["type"] == "websocket.close", message
    await communicator.disconnect()
    return message["code"]


async def test_a_logged_out_operator_stops_hearing_the_extension_at_once(settings) -> None:
    settings.AIPBX_WS_RECHECK_S = 600.0  # the logout itself must end the socket, not the timer
    client = await db(logged_in, "op", "1002")
    communicator = await open_socket("/ws/live/", client)
    # when the operator logs out (another tab, or an admin ending the session) and a call comes in
    await db(client.logout)
    await db(apply_event, event("call.started", "after-logout", caller="1001", callee="1002"))
    # then the socket is closed as unauthenticated before the call could be relayed
    assert await closed_with(communicator) == 4401


async def test_an_operator_taken_off_the_extension_stops_hearing_it(settings) -> None:
    settings.AIPBX_WS_RECHECK_S = 600.0
    client = await db(logged_in, "op", "1002")
    await db(apply_event, event("call.started", "c-scope", caller="1001", callee="1002"))
    dashboard = await open_socket("/ws/live/", client)
    call_page = await open_socket("/ws/calls/c-scope/", client)
    # when an admin takes 1002 away from the operator, and the call goes on
    await db(lambda: Extension.objects.get(number="1002").operators.clear())
    await db(apply_event, event("call.answered", "c-scope", ai=True))
    # then the call page is no longer theirs, and the dashboard is told to reconnect to its new scope
    assert await closed_with(call_page) == 4404
    assert await closed_with(dashboard) == 4409


async def test_a_session_that_disappears_without_a_signal_is_noticed_by_the_timer(settings) -> None:
    settings.AIPBX_WS_RECHECK_S = 0.2
    client = await db(logged_in, "op", "1002")
    communicator = await open_socket("/ws/live/", client)
    # when the session row goes away behind the console's back (expiry clean-up, a database edit)
    await db(lambda: Session.objects.all().delete())
    assert await closed_with(communicator) == 4401


async def test_a_socket_still_allowed_keeps_going(settings) -> None:
    settings.AIPBX_WS_RECHECK_S = 0.2
    client = await db(logged_in, "op", "1002")
    communicator = await open_socket("/ws/live/", client)
    try:
        await db(lambda: make_user("other", extensions=("1003",)))  # someone else's change
        await db(apply_event, event("call.started", "still-mine", caller="1001", callee="1002"))
        assert (await communicator.receive_json_from(timeout=5))["call"]["call_id"] == "still-mine"
    finally:
        await communicator.disconnect()


async def test_sockets_without_a_session_follow_the_user_row(settings) -> None:
    settings.AIPBX_WS_RECHECK_S = 0.2
    user = await db(lambda: make_user("op", extensions=("1002",)))
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/")
    communicator.scope["user"] = user
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=5)
    user.is_active = False
    await db(user.save)
    assert await closed_with(communicator) == 4401
