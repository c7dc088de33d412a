"""Alerts on every console page, in headless Chromium: a caller waiting for a person rings, notifies
and counts, on a page that is not the help-request page; the notification permission is asked from a
click; "Alerts: off" silences both but not the badge.

The browser's own notification and audio are observed, not faked away: an init script replaces
``window.Notification`` with a recorder (headless Chromium shows no notifications) and wraps
``OscillatorNode.prototype.start`` to record each tone started, with its frequency and its context's
state. The help requests come through the event stream as the ARI app writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer, login
from tests.web.calls_factory import PASSWORD, event, make_user
from webconsole.calls.models import Operator, Presence

pytestmark = pytest.mark.django_db(transaction=True)

RECORDER = """
window.__alerts = {notifications: [], permissionRequests: [], tones: []};
(function () {
  var permission = "default";
  function RecordedNotification(title, options) {
    window.__alerts.notifications.push({title: title, body: (options || {}).body, tag: (options || {}).tag});
  }
  Object.defineProperty(RecordedNotification, "permission", {get: function () { return permission; }});
  RecordedNotification.requestPermission = function (callback) {
    // navigator.userActivation.isActive: whether the page asked from within a user gesture
    window.__alerts.permissionRequests.push({gesture: navigator.userActivation.isActive});
    permission = "granted";
    if (callback) callback(permission);
    return Promise.resolve(permission);
  };
  window.Notification = RecordedNotification;
  var start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function () {
    window.__alerts.tones.push({frequency: this.frequency.value, state: this.context.state});
    return start.apply(this, arguments);
  };
})();
"""


@pytest.fixture
def operator() -> User:
    """An operator of 1002 who chose "available": on duty while a console page of theirs is open."""
    user = make_user("kim.minji", extensions=("1002",))
    Operator.objects.filter(user=user).update(status=Presence.AVAILABLE)
    return user


def caller_waits(call_id: str, question: str) -> list[dict[str, str]]:
    return [
        event("call.started", call_id, caller="01055550000", callee="1002", start="2026-11-25T01:00:00+00:00"),
        event("call.answered", call_id, answered_by="ai", ai=True),
        event(
            "hitl.requested",
            call_id,
            request_id=f"r-{call_id}",
            question=question,
            reason="low_confidence",
            callee="1002",
            caller="01055550000",
            language="en-US",
        ),
    ]


def recorded(page: Page) -> dict[str, Any]:
    return page.evaluate("window.__alerts")


def test_a_waiting_caller_rings_notifies_and_counts_on_any_page(
    page: Page, web_server: WebServer, operator: User, ari_events: Callable[..., None]
) -> None:
    # given: the operator on the operators page (no live table of its own), alerts allowed by a click
    page.add_init_script(RECORDER)
    login(page, web_server, operator.username, PASSWORD)
    page.goto(f"{web_server.url}/operators/")
    expect(page.locator("body")).to_have_attribute("data-console", "connected")
    badge = page.locator("#hitl-nav-count")
    expect(badge).to_be_hidden()
    ask = page.get_by_role("button", name="Enable desktop notifications")
    ask.click()
    expect(ask).to_be_hidden()
    assert recorded(page)["permissionRequests"] == [{"gesture": True}]  # asked from the click, once

    # when: a caller starts waiting for a person
    ari_events(*caller_waits("c-alert", "Is the storage room open on Sunday?"))

    # then: a notification, a sound and the count, without a reload
    expect(badge).to_have_text("1")
    expect(badge).to_be_visible()
    page.wait_for_function("window.__alerts.notifications.length === 1")
    [shown] = recorded(page)["notifications"]
    assert shown == {
        "title": "Caller waiting for a person: 01055550000 → 1002",
        "body": "Is the storage room open on Sunday?",
        "tag": "r-c-alert",
    }
    tones = recorded(page)["tones"]
    assert [t["frequency"] for t in tones] == [880, 1320]
    assert {t["state"] for t in tones} == {"running"}  # the click before let the audio run
    expect(page).to_have_title("(1) Operators · AI PBX")


def test_alerts_off_silences_sound_and_notification_but_not_the_badge(
    page: Page, web_server: WebServer, operator: User, ari_events: Callable[..., None]
) -> None:
    # given: notifications allowed, then the operator turns alerts off (kept across pages)
    page.add_init_script(RECORDER)
    login(page, web_server, operator.username, PASSWORD)
    page.goto(f"{web_server.url}/calls/")
    page.get_by_role("button", name="Enable desktop notifications").click()
    page.get_by_role("button", name="Alerts: on").click()
    page.goto(f"{web_server.url}/operators/")
    page.get_by_role("button", name="Enable desktop notifications").click()  # a new page: a new recorder
    mute = page.get_by_role("button", name="Alerts: off")
    expect(mute).to_have_attribute("aria-pressed", "true")
    expect(page.locator("body")).to_have_attribute("data-console", "connected")

    # when
    ari_events(*caller_waits("c-muted", "Can I pay by card?"))

    # then: counted, silently
    expect(page.locator("#hitl-nav-count")).to_have_text("1")
    assert recorded(page)["notifications"] == [] and recorded(page)["tones"] == []

    # and when alerts are on again, the next caller rings
    mute.click()
    expect(page.get_by_role("button", name="Alerts: on")).to_have_attribute("aria-pressed", "false")
    ari_events(*caller_waits("c-loud", "Do you deliver?"))
    expect(page.locator("#hitl-nav-count")).to_have_text("2")
    page.wait_for_function("window.__alerts.notifications.length === 1")
    assert len(recorded(page)["tones"]) == 2
