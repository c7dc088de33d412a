"""The dashboard, in headless Chromium: each live AI call shows the AI's confidence and its reply as it
is spoken, growing sentence by sentence before the turn ends, then what the caller heard.

The events come through the stream as the ARI app writes them (``reply.speaking`` as each sentence
starts to play, ``turn`` after the reply), applied as the console's consumer applies them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer, login
from tests.web.calls_factory import PASSWORD, event, make_user

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = "The team meeting is on Tuesday."
SECOND = "It starts at ten in room B."


def test_the_dashboard_shows_the_confidence_and_the_reply_growing_as_it_is_spoken(
    page: Page, web_server: WebServer, ari_events: Callable[..., None]
) -> None:
    # given: an operator of 1002 on the dashboard, and a call the AI has just answered
    user = make_user("lee.sora", extensions=("1002",))
    login(page, web_server, user.username, PASSWORD)
    page.goto(f"{web_server.url}/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    ari_events(
        event("call.started", "dash-1", caller="01077778888", callee="1002", start="2026-11-25T01:00:00+00:00"),
        event("call.answered", "dash-1", answered_by="ai", ai=True),
        event("state", "dash-1", state="thinking"),
        event("transcript", "dash-1", speaker="caller", text="When is the team meeting?", final=True, t=3.1),
        event(
            "retrieval",
            "dash-1",
            question="When is the team meeting?",
            t=3.1,
            confidence=0.82,
            results=[{"text": "Team meeting: Tuesday 10:00, room B.", "score": 0.71, "item_id": None, "used": True}],
        ),
    )
    row = page.locator('#active-calls tr[data-call-id="dash-1"]')
    expect(row.locator("td.confidence")).to_have_text("82%")
    reply = row.locator("td.reply")
    expect(reply).to_have_text("")

    # when: the first sentence starts to play
    ari_events(event("reply.speaking", "dash-1", t=4.0, text=FIRST))
    # then: it is on the dashboard while the AI is speaking
    expect(reply).to_have_text(FIRST)
    expect(reply).to_have_class("reply speaking")

    # when: the second starts to play (the turn has not ended: no "turn" event yet)
    ari_events(
        event("state", "dash-1", state="speaking"), event("reply.speaking", "dash-1", t=4.0, text=f"{FIRST} {SECOND}")
    )
    # then: the reply grows in place
    expect(reply).to_have_text(f"{FIRST} {SECOND}")
    expect(reply).to_have_class("reply speaking")

    # when: the reply has been played and the AI listens again
    ari_events(
        event(
            "turn",
            "dash-1",
            t=4.0,
            speaker="ai",
            text=f"{FIRST} {SECOND}",
            interrupted=False,
            unspoken="",
            latency_ms={},
            retrieved=[],
        ),
        event("state", "dash-1", state="listening"),
    )
    # then: it stays as what was said, no longer as being spoken
    expect(reply).to_have_class("reply")
    expect(reply).to_have_text(f"{FIRST} {SECOND}")
    expect(row.locator("td.confidence")).to_have_text("82%")
