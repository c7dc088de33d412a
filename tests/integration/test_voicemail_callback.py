"""Voicemail and call-back end to end: real SIP phones, the real Asterisk, the ARI app and the console's
event consumer on the test database.

A caller asks 1002's AI what its knowledge cannot answer while nobody is available: they hear the
away message, "please leave a message after the tone" and the tone (recognised from what the phone
received), say a message and hang up; the message lands in PostgreSQL with its transcript and a
sealed file that holds the same words. Then an operator clicks "call back": their registered phone
(1003) rings first, and once they answer the caller's phone (1001) rings; both answer and hear each
other; the new call is linked to the first. An operator whose phone is not registered is told so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from softphone.analysis import dominant_frequency, silent_tail, speech_seconds
from tests.integration.audio_checks import Recordings, greeted, speech, transcribe, until
from tests.integration.threaded import InThread
from tests.web.calls_factory import make_user
from webconsole.calls.models import Call, Callback, CallState, Operator, Presence, Role

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

QUESTION = "What is the alarm code for the storage room?"
MESSAGE = "Hello, this is Minsu. Please call me back tomorrow morning about the blue key card."
OPERATOR_SAYS = "Hello Minsu, this is the front desk calling you back about the blue key card."
RATE = 8000


def heard_tone(pcm: np.ndarray, freq: float = 1000.0) -> bool:
    """A loud tone at ``freq`` (±40 Hz) in some half second of ``pcm``."""
    half = RATE // 2
    for start in range(0, max(0, len(pcm) - half), RATE // 10):
        piece = pcm[start : start + half]
        if speech_seconds(piece) >= 0.4 and abs(dominant_frequency(piece) - freq) < 40:
            return True
    return False


def wait_for(predicate, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def leave_a_message(phones) -> tuple[str, bool]:
    """Ask, hear the away message, the voicemail prompt and the tone, leave a message, hang up."""
    async with phones("1001") as caller:
        call = await greeted(caller, "1002")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(QUESTION))
        done_at = len(call.received_audio())
        await until(lambda: heard_tone(call.received_audio()[-3 * RATE :]), 40, "the voicemail tone")
        await until(lambda: silent_tail(call.received_audio(), 0.5), 10, "quiet after the tone")
        prompt = call.received_audio()[asked_at:]
        tone = heard_tone(call.received_audio()[done_at:])
        await call.play_and_wait(await speech(MESSAGE))
        await asyncio.sleep(1.0)
        await call.hangup()
        return await transcribe(prompt), tone


def test_nobody_available_the_caller_leaves_a_message_that_lands_transcribed_and_sealed(
    pbx, ariapp, console, phones, transactional_db
) -> None:
    from webconsole.voicemail.models import Voicemail

    # given: 1002's only operator is away
    make_user("away1002", extensions=("1002",))
    Operator.objects.filter(user__username="away1002").update(status=Presence.AWAY)

    # when: a caller asks what the AI cannot answer, hears the prompt and the tone, and speaks
    thread = InThread(lambda: leave_a_message(phones))
    thread.start()
    prompt, tone = thread.result(timeout=150)

    # then: they heard that nobody is available, to leave a message after the tone, and the tone
    assert "available" in prompt and "leave a message" in prompt and "tone" in prompt, prompt
    assert tone
    voicemail = wait_for(lambda: Voicemail.objects.select_related("call", "hitl_request").first(), 60, "the voicemail")
    call = voicemail.call
    assert (voicemail.caller, voicemail.callee, voicemail.reason) == ("1001", "1002", "away")
    assert voicemail.hitl_request is not None and voicemail.hitl_request.status == "away"
    assert call.hitl_status == "unresolved" and not voicemail.handled
    words = voicemail.transcript.lower()
    # (the recogniser's spelling of "key card" varies: "keycard", once "tea cart")
    assert "blue" in words and "tomorrow" in words and ("card" in words or "cart" in words), words
    assert 3.0 < voicemail.duration_s < 20.0
    # the message is sealed at rest beside the call's recordings, and it holds what the caller said
    recordings = Recordings(pbx.cfg)
    folder = recordings.folder(call.call_id)
    assert recordings.keys is not None
    assert (folder / "voicemail.wav.enc").exists() and not (folder / "voicemail.wav").exists()
    assert (folder / "voicemail.wav.enc").stat().st_mode & 0o777 == 0o600
    pcm, rate = recordings.pcm(call.call_id, "voicemail.wav")
    assert "blue" in asyncio.run(transcribe(pcm, rate))
    assert recordings.metadata(call.call_id)["voicemail"]["file"] == "voicemail.wav"


def test_a_hold_nobody_answers_ends_in_the_voicemail_prompt_and_the_message_is_kept(
    pbx, ariapp, console, phones, transactional_db
) -> None:
    from stack.instance import AppProcess
    from webconsole.calls.actions import do_set_presence
    from webconsole.voicemail.models import Voicemail

    # given: an operator of 1002 on duty (choosing a status is a heartbeat) who never answers, and
    # the hold scaled down from 60 s to 6 s
    user = make_user("silent1002", extensions=("1002",))
    do_set_presence(user.operator, Presence.AVAILABLE)
    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_HITL_HOLD_S": "6", "AIPBX_HITL_UPDATES_S": "3"})
    try:
        app.start()
        thread = InThread(lambda: leave_a_message(phones))
        thread.start()
        prompt, tone = thread.result(timeout=150)
        # the app finishes the call (files sealed, then the event) before it is stopped
        voicemail = wait_for(lambda: Voicemail.objects.select_related("hitl_request").first(), 60, "the voicemail")
    finally:
        app.stop()
        ariapp.start()

    # then: the hold, the timeout's promise, the prompt and the tone, in that order
    marks = ["moment", "call you back", "leave a message", "tone"]
    positions = [prompt.find(mark) for mark in marks]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), prompt
    assert tone
    assert voicemail.reason == "timeout" and voicemail.hitl_request.status == "timed_out"
    assert "blue" in voicemail.transcript.lower(), voicemail.transcript


# --- call back ------------------------------------------------------------------------------------------


def earlier_call() -> Call:
    """A call 1001 made to 1002 that nobody answered: the one to call back."""
    return Call.objects.create(
        call_id=f"earlier-{uuid.uuid4().hex[:8]}",
        caller="1001",
        callee="1002",
        state=CallState.ENDED,
        ai_handled=True,
        started=timezone.now(),
        ended=timezone.now(),
        hitl_status="unresolved",
    )


def operator_with_phone(name: str, phone: str):
    user = make_user(name, role=Role.OPERATOR, extensions=("1002",))
    Operator.objects.filter(user=user).update(extension=phone)
    user.refresh_from_db()
    return user


async def both_answer_and_talk(phones, request) -> dict[str, Any]:
    """1003 (the operator) and 1001 (the caller) registered; the call-back rings 1003, then 1001."""
    async with phones("1003") as operator_phone, phones("1001") as caller_phone:
        await asyncio.to_thread(request)
        ringing = await operator_phone.next_incoming(timeout=15)
        await asyncio.sleep(1.0)  # let it ring: 1001 must stay quiet until the operator answers
        operator_call = await ringing.answer()
        answered_at = time.monotonic()
        incoming = await caller_phone.next_incoming(timeout=15)
        callers_call = await incoming.answer()
        await asyncio.sleep(0.5)
        # the operator speaks, the caller hears it; the caller plays a tone, the operator hears it
        heard_from = len(callers_call.received_audio())
        await operator_call.play_and_wait(await speech(OPERATOR_SAYS))
        await asyncio.sleep(0.5)
        caller_heard = callers_call.received_audio()[heard_from:]
        tone_from = len(operator_call.received_audio())
        await callers_call.play_and_wait((np.sin(2 * np.pi * 700 * np.arange(RATE) / RATE) * 8000).astype(np.int16))
        await asyncio.sleep(0.3)
        operator_heard = operator_call.received_audio()[tone_from:]
        await callers_call.hangup()
        await until(operator_call.ended.is_set, 10, "the operator's leg to end")
        return {
            "operator_saw": ringing.caller,
            "caller_saw": incoming.caller,
            "nothing_rang_1001_first": incoming.received_at >= answered_at,
            "caller_heard": await transcribe(caller_heard),
            "operator_heard_hz": dominant_frequency(operator_heard),
        }


def test_call_back_rings_the_operator_then_the_caller_and_they_hear_each_other(
    pbx, ariapp, console, phones, transactional_db, settings
) -> None:
    from webconsole.calls.callbacks import do_request_callback

    # given: the console speaks to this PBX's ARI app, an operator whose phone is 1003, a missed call
    settings.AIPBX_INSTANCE = pbx.cfg.name
    user = operator_with_phone("desk", "1003")
    old = earlier_call()

    # when: the operator clicks "call back" (the function the button calls), and both phones answer
    thread = InThread(lambda: both_answer_and_talk(phones, lambda: do_request_callback(user, old)))
    thread.start()
    result = thread.result(timeout=90)

    # then: the operator's phone rang first showing the caller's number, the caller's showed 1002
    assert result["operator_saw"] == "1001" and result["caller_saw"] == "1002"
    assert result["nothing_rang_1001_first"]
    # and audio flows both ways through the bridge
    assert "blue key card" in result["caller_heard"] or "calling you back" in result["caller_heard"], result
    assert abs(result["operator_heard_hz"] - 700) < 30, result
    # the new call is in the history, linked to the earlier one, answered by the operator's phone
    callback = wait_for(
        lambda: Callback.objects.select_related("call").filter(status="ended", call__state=CallState.ENDED).first(),
        30,
        "the call-back to end",
    )
    new = callback.call
    assert new.callback_of_id == old.pk and (new.caller, new.callee) == ("1001", "1002")
    assert new.answered_by == "PJSIP/1003" and new.termination_reason == "caller_hangup" and new.billsec > 2
    client = Client()
    client.force_login(user)
    assert f"/calls/{new.call_id}/" in client.get(f"/calls/{old.call_id}/").content.decode()
    assert f'id="callback-of" href="/calls/{old.call_id}/"' in client.get(f"/calls/{new.call_id}/").content.decode()


def test_a_call_back_to_an_unregistered_operator_phone_says_so(
    pbx, ariapp, console, transactional_db, settings
) -> None:
    from webconsole.calls.callbacks import do_request_callback

    settings.AIPBX_INSTANCE = pbx.cfg.name
    user = operator_with_phone("nophone", "1004")  # 1004 is an extension, but no phone registered it
    callback = do_request_callback(user, earlier_call())
    wait_for(lambda: Callback.objects.filter(pk=callback.pk, status="failed").exists(), 20, "the failure")
    callback.refresh_from_db()
    assert callback.reason == "operator_unregistered"
    client = Client()
    client.force_login(user)
    page = client.get(f"/calls/{callback.call.call_id}/").content.decode()
    assert "Your phone is not registered" in page
