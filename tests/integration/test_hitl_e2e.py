"""Human in the loop end to end: a real SIP call, the real ARI app, the console in headless Chromium.

The caller asks what 1002's knowledge cannot answer. With an operator available, the caller is put
on hold, the operator sees the request live, types an answer, and the caller hears it (checked by
recognising the phone's received audio). With nobody available, the away message comes at once
and the call is listed as unresolved. With nobody answering, the hold's spoken updates and the
polite timeout come in order (hold limits scaled down for the test).
"""

from __future__ import annotations

import threading
import uuid

import pytest
from playwright.sync_api import Page, expect

from softphone.analysis import silent_tail, speech_seconds
from tests.browser.conftest import login
from tests.integration.audio_checks import greeted, speech, transcribe, until
from tests.integration.threaded import InThread
from webconsole.calls.models import Operator, Presence, Role

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

QUESTION = "What is the alarm code for the storage room?"
RATE = 8000


async def ask_and_hold(phones, on_hold: threading.Event, answered: threading.Event) -> str:
    """Ask, hear the hold message, wait for the operator's answer to be spoken; returns all heard after asking."""
    async with phones("1001") as caller:
        call = await greeted(caller, "1002")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(QUESTION))
        await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 2.5, 20, "the hold message")
        on_hold.set()
        await until(answered.is_set, 60, "the operator's answer in the console")
        # the answer is spoken within moments of the click (maybe already): wait until the line is quiet
        clicked_at = len(call.received_audio())
        await until(
            lambda: len(call.received_audio()) - clicked_at > 2 * RATE and silent_tail(call.received_audio(), 1.5),
            30,
            "the answer to be spoken",
        )
        await call.hangup()
        return await transcribe(call.received_audio()[asked_at:])


async def ask_and_listen(phones, until_silent_s: float = 1.0, timeout: float = 30) -> tuple[str, float]:
    """Ask, listen until the AI has spoken and gone quiet; returns (what was heard, seconds to first sound)."""
    async with phones("1001") as caller:
        call = await greeted(caller, "1002")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(QUESTION))
        done_at = len(call.received_audio())
        await until(lambda: speech_seconds(call.received_audio()[done_at:]) > 2.0, timeout, "an answer")
        await until(lambda: silent_tail(call.received_audio(), until_silent_s), timeout, "quiet")
        await call.hangup()
        audio = call.received_audio()
        first = next((i for i in range(done_at, len(audio), 160) if abs(audio[i : i + 160]).max() > 500), len(audio))
        return await transcribe(audio[asked_at:]), (first - done_at) / RATE


def operator(django_user_model, presence: str):
    password = uuid.uuid4().hex
    user = django_user_model.objects.create_user("operator1", password=password)
    Operator.objects.create(user=user, role=Role.ADMIN, status=presence)
    return user, password


def test_an_operator_answers_and_the_caller_hears_it(
    console, phones, page: Page, transactional_db, django_user_model
) -> None:
    from knowledge.models import KnowledgeItem
    from webconsole.hitl.models import HitlRequest

    user, password = operator(django_user_model, Presence.AVAILABLE)
    login(page, console.server, user.username, password)
    page.goto(f"{console.url}/hitl/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    on_hold, answered = threading.Event(), threading.Event()
    phone = InThread(lambda: ask_and_hold(phones, on_hold, answered))
    phone.start()
    # the request appears live, with the caller's question
    row = page.locator("#hitl-open tbody tr").filter(has_text="alarm code")
    expect(row).to_be_visible(timeout=30_000)
    assert on_hold.wait(30), "the caller never heard the hold message"
    row.locator("a").click()
    page.locator('textarea[name="text"]').fill("the front desk keeps the blue key card")
    page.locator('input[name="save_to_knowledge"]').check()
    page.get_by_role("button", name="Send answer").click()
    answered.set()
    heard = phone.result()
    hold_at = max(heard.find("moment"), heard.find("checking"))
    assert 0 <= hold_at < heard.find("front desk") and "blue" in heard, heard  # the hold message, then the answer
    request = HitlRequest.objects.get(question__icontains="alarm code")
    assert request.status == "delivered" and request.claimed_by == user
    item = KnowledgeItem.objects.get(pk=request.saved_item_id)
    assert (item.status, item.source, item.owner, item.source_call_id) == (
        "pending",
        "hitl",
        "1002",
        request.call.call_id,
    )
    assert "blue key card" in item.text and "alarm code" in item.text


def test_with_nobody_available_the_caller_hears_the_away_message_at_once(
    console, phones, page: Page, transactional_db, django_user_model
) -> None:
    from webconsole.hitl.models import HitlRequest

    user, password = operator(django_user_model, Presence.AWAY)
    heard, first_sound_s = _run(lambda: ask_and_listen(phones))
    assert "available" in heard and ("nobody" in heard or "no one" in heard), heard
    assert first_sound_s < 4.0, f"the away message took {first_sound_s:.1f} s"
    request = HitlRequest.objects.get(question__icontains="alarm code")
    assert request.status == "away" and request.call.hitl_status == "unresolved"
    login(page, console.server, user.username, password)
    page.goto(f"{console.url}/calls/?hitl=unresolved")
    expect(page.locator(f'tr[data-call-id="{request.call.call_id}"]')).to_be_visible()


def _run(script):
    thread = InThread(script)
    thread.start()
    return thread.result()


def test_a_hold_nobody_answers_has_its_updates_in_order_then_a_polite_timeout(
    pbx, ariapp, console, phones, page: Page, transactional_db, django_user_model
) -> None:
    from stack.instance import AppProcess
    from webconsole.hitl.models import HitlRequest

    # an operator who is there (a console page open keeps them present) but never answers
    user, password = operator(django_user_model, Presence.AVAILABLE)
    login(page, console.server, user.username, password)
    page.goto(f"{console.url}/hitl/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_HITL_HOLD_S": "9", "AIPBX_HITL_UPDATES_S": "3,6"})
    try:
        app.start()
        heard, _ = _run(lambda: ask_and_listen(phones, until_silent_s=1.5, timeout=40))
    finally:
        app.stop()
        ariapp.start()
    marks = ["moment", "still checking", "sorry for the wait", "call you back"]  # words whisper hears reliably
    positions = [heard.find(mark) for mark in marks]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), heard
    request = HitlRequest.objects.get(question__icontains="alarm code")
    assert request.status == "timed_out" and request.call.hitl_status == "unresolved"
