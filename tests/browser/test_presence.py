"""Presence in a real browser: an open console page answers the server's heartbeat pings and keeps its
operator on duty past the timeout; when the browser's network is cut (Chromium's offline emulation:
the page reaches nothing and answers no ping; the server counts on no goodbye) the operator goes
offline and a caller gets the away message instead of a hold.

A Daphne of this module's own runs with short intervals (heartbeat 0.3 s, timeout 1.5 s), and the
test's own process (which applies the events, so makes the HITL decision) is given the same timeout.
Waits are bounded polls with ample room, never a sleep equal to a threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer, login, run_daphne
from tests.web.calls_factory import PASSWORD, event, make_user
from webconsole.calls import presence
from webconsole.calls.models import Operator, Presence
from webconsole.hitl.models import HitlRequest

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT_S, TIMEOUT_S = 0.3, 1.5


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[WebServer]:
    env = {"AIPBX_PRESENCE_HEARTBEAT_S": str(HEARTBEAT_S), "AIPBX_PRESENCE_TIMEOUT_S": str(TIMEOUT_S)}
    with run_daphne(tmp_path_factory.mktemp("daphne-presence"), env) as server:
        yield server


@pytest.fixture
def operator(settings: Any) -> User:
    settings.AIPBX_PRESENCE_TIMEOUT_S = TIMEOUT_S
    settings.AIPBX_PRESENCE_HEARTBEAT_S = HEARTBEAT_S
    user = make_user("park.jiho", extensions=("1002",))
    Operator.objects.filter(user=user).update(status=Presence.AVAILABLE)
    return user


def operator_row(user: User) -> Operator:
    return Operator.objects.get(user=user)


def until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.05)


def decision(ari_events: Callable[..., None], call_id: str) -> str:
    ari_events(
        event("call.started", call_id, caller="01055550000", callee="1002"),
        event(
            "hitl.requested",
            call_id,
            request_id=f"r-{call_id}",
            question="Are you open?",
            reason="low_confidence",
            callee="1002",
        ),
    )
    return HitlRequest.objects.get(request_id=f"r-{call_id}").status


def test_an_open_page_keeps_its_operator_on_duty_and_a_cut_off_one_does_not(
    page: Page, quick_server: WebServer, operator: User, ari_events: Callable[..., None]
) -> None:
    # given: the operator on a page without live data of its own (the knowledge list)
    login(page, quick_server, operator.username, PASSWORD)
    page.goto(f"{quick_server.url}/knowledge/")
    expect(page.locator("body")).to_have_attribute("data-console", "connected")
    until(lambda: operator_row(operator).last_seen is not None, 10, "heartbeat on connect")
    first: datetime = operator_row(operator).last_seen

    # then: the page answers the server's pings, for longer than the timeout
    until(
        lambda: (operator_row(operator).last_seen - first).total_seconds() > 2 * TIMEOUT_S,
        20,
        "heartbeats past the timeout",
    )
    assert decision(ari_events, "while-open") == "waiting"

    # when: the browser's network goes away
    page.context.set_offline(True)

    # then: the operator goes offline and the next caller is told nobody is available
    until(lambda: presence.effective(operator_row(operator)) == Presence.OFFLINE, 10 * TIMEOUT_S, "offline")
    assert operator_row(operator).status == Presence.AVAILABLE  # the choice is kept for when they return
    assert decision(ari_events, "after-cut") == "away"
