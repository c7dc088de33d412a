"""Transfer to a person end to end: real SIP phones, the real Asterisk, the ARI app and the console's
event consumer on the test database.

A caller (1001) asks 1002's AI for a real person while an operator with a phone (1003) is available:
the AI says it puts them through, 1003 rings, the operator answers and hears a short briefing that
names what the caller asked, then caller and operator hear each other; the call keeps one CDR line,
answered by "ai,1003", and its recording goes on across the transfer. An operator who clicks "take
this call" and does not answer leaves the caller with the AI, who says so, and the caller goes on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from softphone.analysis import dominant_frequency, silent_tail, speech_seconds
from tests.integration.audio_checks import Recordings, greeted, speech, transcribe, until
from tests.integration.test_voicemail_callback import wait_for
from tests.integration.threaded import InThread
from tests.web.calls_factory import make_user
from webconsole.calls.models import Call, Operator, Presence, Role, Transfer

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

ASK_FOR_PERSON = "Can I talk to a real person about my parking permit?"
OPERATOR_SAYS = "Hello, this is the front desk. I can help you with the parking permit."
RATE = 8000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(int(RATE * seconds)) / RATE) * 8000).astype(np.int16)


def has_tone(pcm: np.ndarray, rate: int, hz: float) -> bool:
    """A loud ``hz`` tone (±30 Hz) in some half second of ``pcm``."""
    half = rate // 2
    for start in range(0, max(0, len(pcm) - half), rate // 10):
        piece = pcm[start : start + half]
        if speech_seconds(piece, rate) >= 0.4 and abs(dominant_frequency(piece, rate) - hz) < 30:
            return True
    return False


def operator_with_phone(name: str, phone: str):
    from webconsole.calls.actions import do_set_presence

    user = make_user(name, role=Role.OPERATOR, extensions=("1002",))
    Operator.objects.filter(user=user).update(extension=phone)
    user.refresh_from_db()
    do_set_presence(user.operator, Presence.AVAILABLE)  # choosing a status counts as a heartbeat
    return user


async def put_through(phones) -> dict[str, Any]:
    async with phones("1003") as operator_phone, phones("1001") as caller_phone:
        call = await greeted(caller_phone, "1002")
        asked_from = len(call.received_audio())
        await call.play_and_wait(await speech(ASK_FOR_PERSON))
        asked_at = time.monotonic()
        ringing = await operator_phone.next_incoming(timeout=30)
        rang_after = ringing.received_at - asked_at
        operator_call = await ringing.answer()
        answered_at = time.monotonic()
        # the briefing, then quiet: the operator is put through
        await until(lambda: speech_seconds(operator_call.received_audio()) > 1.0, 20, "the briefing")
        await until(lambda: silent_tail(operator_call.received_audio(), 1.5), 40, "the end of the briefing")
        connected_after = time.monotonic() - answered_at
        briefing = operator_call.received_audio().copy()
        caller_waited = call.received_audio()[asked_from:].copy()
        await asyncio.sleep(0.5)
        # the operator speaks, the caller hears it; the caller plays a tone, the operator hears it
        heard_from = len(call.received_audio())
        await operator_call.play_and_wait(await speech(OPERATOR_SAYS))
        await asyncio.sleep(0.5)
        caller_heard = call.received_audio()[heard_from:]
        tone_from = len(operator_call.received_audio())
        await call.play_and_wait(tone(700))
        await asyncio.sleep(0.3)
        operator_heard = operator_call.received_audio()[tone_from:]
        await call.hangup()
        await until(operator_call.ended.is_set, 10, "the operator's leg to end")
        return {
            "operator_saw": ringing.caller,
            "rang_after_s": rang_after,
            "connected_after_s": connected_after,
            "briefing_speech_s": speech_seconds(briefing),
            "briefing": await transcribe(briefing),
            "caller_waited": await transcribe(caller_waited),
            "caller_heard": await transcribe(caller_heard),
            "operator_heard_hz": dominant_frequency(operator_heard),
        }


def test_a_caller_who_asks_for_a_person_is_put_through_after_the_operator_is_briefed(
    pbx, ariapp, console, phones, transactional_db, settings
) -> None:
    # given: the console speaks to this PBX's ARI app; 1002's operator is available with phone 1003
    settings.AIPBX_INSTANCE = pbx.cfg.name
    user = operator_with_phone("desk", "1003")

    # when: the caller asks for a person, the operator answers, hears the briefing, and they talk
    thread = InThread(lambda: put_through(phones))
    thread.start()
    result = thread.result(timeout=150)
    print("transfer timings:", {k: v for k, v in result.items() if k.endswith("_s")})

    # then: the AI said it puts the caller through; the operator's phone showed the caller
    assert "put you through" in result["caller_waited"] or "through to" in result["caller_waited"], result
    assert result["operator_saw"] == "1001"
    # the briefing names who calls and what they asked
    briefing = result["briefing"]
    assert "parking" in briefing and ("permit" in briefing or "person" in briefing), briefing
    # caller and operator hear each other through the caller's bridge
    assert "parking" in result["caller_heard"] or "front desk" in result["caller_heard"], result
    assert abs(result["operator_heard_hz"] - 700) < 30, result
    # one call, one CDR line, answered by the AI and then the operator's phone
    call = wait_for(lambda: Call.objects.filter(state="ended", caller="1001", callee="1002").first(), 30, "the call")
    transfer = Transfer.objects.get(call=call)
    assert (transfer.status, transfer.operator_ext, transfer.operator) == ("ended", "1003", user)
    assert call.answered_by == "ai,1003" and call.hitl_requests.get().status == "delivered"
    lines = [line for line in pbx.cdr_lines() if line.get("call_id") == call.call_id]
    assert len(lines) == 1 and lines[0]["answered_by"] == "ai,1003", lines
    # the recording went on after the bridge: the caller's tone and the operator's words are in it
    recordings = Recordings(pbx.cfg)
    pcm, rate = recordings.pcm(call.call_id, "caller.wav")  # what the bridge carried to the AI's channel
    assert len(pcm) / rate > (call.billsec or 0) - 3.0, (len(pcm) / rate, call.billsec)
    assert has_tone(pcm, rate, 700.0), "the caller's tone after the transfer is not in the recording"


async def nobody_answers(phones, click) -> dict[str, Any]:
    async with phones("1003") as operator_phone, phones("1001") as caller_phone:
        call = await greeted(caller_phone, "1002")
        await asyncio.to_thread(click)
        clicked_at = time.monotonic()
        ringing = await operator_phone.next_incoming(timeout=15)
        rang_after_click = ringing.received_at - clicked_at
        await until(ringing.cancelled.is_set, 30, "the operator's phone to stop ringing")
        told_from = len(call.received_audio())  # the hold music stops: the AI says nobody answered
        await until(lambda: speech_seconds(call.received_audio()[told_from:]) > 2.5, 20, "the AI to say so")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of what the AI said")
        told = call.received_audio()[told_from:].copy()
        # and the conversation goes on: the AI answers the next question
        goes_on_from = len(call.received_audio())
        await call.play_and_wait(await speech("When is the office open?"))
        await until(lambda: speech_seconds(call.received_audio()[goes_on_from:]) > 1.0, 40, "an answer")
        await call.hangup()
        return {"told": await transcribe(told), "rang_after_click_s": rang_after_click}


def test_an_operator_who_does_not_answer_leaves_the_caller_with_the_ai_who_says_so(
    pbx, ariapp, console, phones, transactional_db, settings
) -> None:
    from stack.instance import AppProcess
    from webconsole.calls.transfers import do_request_transfer

    settings.AIPBX_INSTANCE = pbx.cfg.name
    user = operator_with_phone("silent", "1003")

    def click() -> None:  # "take this call" on the live call page, once the AI has the caller
        from django.db import connection

        try:
            call = wait_for(lambda: Call.objects.filter(state="ai", caller="1001").first(), 20, "the AI call")
            do_request_transfer(user, call)
        finally:
            connection.close()  # this worker thread's own connection: the test database is dropped later

    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_TRANSFER_RING_S": "6"})
    try:
        app.start()
        thread = InThread(lambda: nobody_answers(phones, click))
        thread.start()
        result = thread.result(timeout=150)
        transfer = wait_for(lambda: Transfer.objects.filter(status="failed").first(), 30, "the failure")
    finally:
        app.stop()
        ariapp.start()
    print("transfer timings:", {k: v for k, v in result.items() if k.endswith("_s")})
    assert result["rang_after_click_s"] < 5.0, result  # the request goes straight to the ARI app
    assert "could not take" in result["told"] or "still here" in result["told"], result
    assert transfer.reason == "operator_no_answer"


async def listen_then_take_over(phones, listen, take_over, listening) -> dict[str, Any]:
    async with phones("1003") as operator_phone, phones("1001") as caller_phone:
        call = await greeted(caller_phone, "1002")
        await asyncio.to_thread(listen)
        ringing = await operator_phone.next_incoming(timeout=15)
        operator_call = await ringing.answer()
        await asyncio.to_thread(listening)
        # the operator hears the caller, and the AI telling the caller it asks a colleague (1002 knows
        # nothing of office hours, and its operator is on duty: the caller is put on hold)
        heard_from = len(operator_call.received_audio())
        await call.play_and_wait(tone(700))
        await asyncio.sleep(0.3)
        caller_tone = operator_call.received_audio()[heard_from:].copy()
        answer_from = len(operator_call.received_audio())
        await call.play_and_wait(await speech("When is the office open?"))
        await until(lambda: speech_seconds(operator_call.received_audio()[answer_from:]) > 3.0, 40, "the AI's reply")
        await asyncio.sleep(1.0)
        ai_answer = operator_call.received_audio()[answer_from:].copy()
        # nobody hears the listener
        whisper_from = len(call.received_audio())
        await operator_call.play_and_wait(tone(1000, 1.5))
        await asyncio.sleep(0.3)
        caller_heard_whisper = call.received_audio()[whisper_from:].copy()
        # the listener takes over: caller and operator hear each other, the AI says nothing more
        await asyncio.to_thread(take_over)
        await asyncio.sleep(1.5)
        taken_from = len(call.received_audio())
        await operator_call.play_and_wait(await speech(OPERATOR_SAYS))
        await asyncio.sleep(0.5)
        caller_heard = call.received_audio()[taken_from:].copy()
        tone_from = len(operator_call.received_audio())
        await call.play_and_wait(tone(700))
        await asyncio.sleep(0.3)
        operator_heard = operator_call.received_audio()[tone_from:].copy()
        await call.hangup()
        await until(operator_call.ended.is_set, 10, "the operator's leg to end")
        return {
            "operator_saw": ringing.caller,
            "listener_heard_caller_hz": dominant_frequency(caller_tone),
            "listener_heard_ai": await transcribe(ai_answer),
            "whisper_reached_caller": has_tone(caller_heard_whisper, RATE, 1000.0),
            "caller_heard": await transcribe(caller_heard),
            "operator_heard_hz": dominant_frequency(operator_heard),
        }


def test_an_operator_listens_in_unheard_then_takes_the_call_over_from_the_ai(
    pbx, ariapp, console, phones, transactional_db, settings
) -> None:
    from django.db import connection

    from webconsole.calls.transfers import do_request_listen, do_take_over

    # given: an AI call on 1002, whose operator has the phone 1003
    settings.AIPBX_INSTANCE = pbx.cfg.name
    user = operator_with_phone("listener", "1003")

    def in_thread(action):
        def run() -> Any:
            try:
                return action()
            finally:
                connection.close()  # this worker thread's own connection

        return run

    def listen() -> None:  # "Listen in" on the live call page
        call = wait_for(lambda: Call.objects.filter(state="ai", caller="1001").first(), 20, "the AI call")
        do_request_listen(user, call)

    def listening() -> None:  # the live page shows the operator listening
        wait_for(lambda: Transfer.objects.filter(mode="listen", status="listening").exists(), 20, "listening")

    def take_over() -> None:  # "Take over from the AI"
        do_take_over(user, Call.objects.get(state="ai", caller="1001"))

    # when: the operator listens, the caller talks with the AI, then the operator takes over
    thread = InThread(
        lambda: listen_then_take_over(phones, in_thread(listen), in_thread(take_over), in_thread(listening))
    )
    thread.start()
    result = thread.result(timeout=180)
    print("listen-in:", result)

    # then: while listening, the operator heard the caller and the AI's answer, and nobody heard them
    assert result["operator_saw"] == "1001"
    assert abs(result["listener_heard_caller_hz"] - 700) < 30, result
    assert "moment" in result["listener_heard_ai"] or "colleague" in result["listener_heard_ai"], result
    assert result["whisper_reached_caller"] is False, result
    # once taken over, caller and operator hear each other
    assert "parking" in result["caller_heard"] or "front desk" in result["caller_heard"], result
    assert abs(result["operator_heard_hz"] - 700) < 30, result
    # one call, one CDR line, answered by the AI and then the operator; the listen ended with the call
    call = wait_for(lambda: Call.objects.filter(state="ended", caller="1001", callee="1002").first(), 30, "the call")
    transfer = wait_for(lambda: Transfer.objects.filter(call=call, status="ended").first(), 15, "the listen's end")
    assert (transfer.mode, transfer.operator, transfer.connected is not None) == ("listen", user, True)
    assert call.answered_by == "ai,1003"
    assert call.hitl_requests.get().status == "delivered"  # taking over settled the caller's help request
    lines = [line for line in pbx.cdr_lines() if line.get("call_id") == call.call_id]
    assert len(lines) == 1 and lines[0]["answered_by"] == "ai,1003", lines
