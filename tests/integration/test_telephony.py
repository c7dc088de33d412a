"""Real SIP calls through a real Asterisk 22, with the ARI app running as its own process.

Each test judges what a caller would notice: what the phone heard (frequency or recognised words),
when it was answered, what Asterisk still holds afterwards, and the CDR and recording files.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from softphone.analysis import dominant_frequency, first_sound_at, silent_tail, speech_seconds
from tests.integration.audio_checks import Recordings, speech, transcribe, until, until_greeting
from tests.integration.conftest import RING_SECONDS

pytestmark = [pytest.mark.asterisk]


def new_cdr(pbx, before: int, count: int = 1, timeout: float = 15.0):
    """Wait for ``count`` CDR lines beyond the first ``before`` and return them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = pbx.cdr_lines()
        if len(lines) >= before + count:
            return lines[before:]
        time.sleep(0.1)
    raise AssertionError(f"expected {count} new CDR line(s); have {pbx.cdr_lines()[before:]}")


async def cdr_baseline(pbx, ariapp) -> int:
    """The CDR line count once every earlier call is fully written (files, then the CDR line)."""
    await until(
        lambda: (s := ariapp.status())["active_calls"] == 0 and s["calls_finishing"] == 0,
        15,
        "earlier calls to be written",
    )
    return len(pbx.cdr_lines())


async def quiet_asterisk(pbx, timeout: float = 10.0) -> None:
    await until(
        lambda: not pbx.channels() and not pbx.bridges(),
        timeout,
        f"no channels/bridges left (have {pbx.channels()} / {pbx.bridges()})",
    )


def test_the_app_follows_every_channel_but_no_device_state(pbx, ariapp):
    """Every channel (phone-to-phone calls are tracked), and not ``subscribeAll``: Asterisk 22 can wedge
    the app's ARI session when it disconnects during a device state change (asterisk#2170); CI saw the
    PBX refuse the app for good after a restart."""
    app = pbx.ari(f"/ari/applications/{pbx.cfg.ari_app}")
    assert app["channel_ids"] == ["__AST_CHANNEL_ALL_TOPIC"], app
    assert app["device_names"] == [] and app["endpoint_ids"] == [], app


async def test_phone_to_phone_call_carries_audio_both_ways_and_is_recorded(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as alice, phones("1002") as bob:
        # given 1001 calls 1002 and 1002 answers
        outgoing = await alice.dial("1002")
        incoming = await bob.next_incoming(timeout=15)
        bob_call = await incoming.answer()
        await asyncio.wait_for(outgoing.answered(), 5)
        started = time.monotonic()
        # when each side sends a different tone
        outgoing.play_tone(440, 2.0)
        bob_call.play_tone(1000, 2.0)
        await asyncio.sleep(3.0)
        # then each side hears the other's tone
        assert abs(dominant_frequency(bob_call.received_audio()) - 440) < 15
        assert abs(dominant_frequency(outgoing.received_audio()) - 1000) < 15
        await outgoing.hangup()
        duration = time.monotonic() - started
        await asyncio.wait_for(bob_call.ended.wait(), 5)

    (line,) = new_cdr(pbx, before)
    assert (line["caller"], line["callee"], line["answered_by"]) == ("1001", "1002", "1002")
    assert line["ai_handled"] is False and line["termination_reason"] == "caller_hangup"
    assert abs(line["billsec"] - duration) < 1.0
    recordings, call_id = Recordings(pbx.cfg), line["call_id"]
    await until(lambda: recordings.exists(call_id, "metadata.json"), 5, "metadata.json")
    for name in ("caller.wav", "callee.wav", "mixed.wav"):
        assert abs(recordings.seconds(call_id, name) - duration) < 1.0, name
    metadata = recordings.metadata(call_id)
    assert metadata["call"]["call_id"] == line["call_id"]
    assert recordings.exists(call_id, "transcript.txt")
    await quiet_asterisk(pbx)


async def test_unanswered_call_is_answered_by_the_ai_after_the_timeout(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller, phones("1002") as callee:
        # given 1002 is registered and rings but never answers (after the caller heard the recording notice)
        call = await caller.dial("1002")
        await callee.next_incoming(timeout=15)
        started = time.monotonic()
        # when the no-answer timeout passes
        await asyncio.wait_for(call.answered(), RING_SECONDS + 8)
        rang = time.monotonic() - started
        # then the AI answered after the timeout and the caller hears the greeting
        assert RING_SECONDS - 0.3 <= rang < RING_SECONDS + 3
        assert "record" in await transcribe(call.early_audio())  # the notice, before it rang
        await until_greeting(call, 4.0, 20)
        await asyncio.sleep(2.5)
        heard = await transcribe(call.received_audio())
        assert "assistant" in heard and "help" in heard, heard
        await call.hangup()

    (line,) = new_cdr(pbx, before)
    assert line["ai_handled"] is True and line["answered_by"] == "ai"
    assert line["dial_status"] == "NOANSWER"
    recordings, call_id = Recordings(pbx.cfg), line["call_id"]
    await until(lambda: recordings.exists(call_id, "metadata.json"), 5, "metadata.json")
    assert abs(recordings.seconds(call_id, "mixed.wav") - line["billsec"]) < 1.0
    assert speech_seconds(*recordings.pcm(call_id, "callee.wav")) > 4.0  # our greeting is in the AI side
    await quiet_asterisk(pbx)


async def test_unregistered_callee_goes_to_the_ai_at_once(pbx, ariapp, phones):
    async with phones("1001") as caller:
        started = time.monotonic()
        call = await caller.call("1004", timeout=10)
        assert time.monotonic() - started < 1.5
        first = await until(lambda: first_sound_at(call.received_audio()), 10, "first AI audio")
        assert first < 1.5  # greeting starts promptly, no dead air
        await call.hangup()
    await quiet_asterisk(pbx)


async def test_caller_hanging_up_while_ringing_never_reaches_the_ai(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller, phones("1002") as callee:
        call = await caller.dial("1002")
        await callee.next_incoming(timeout=15)
        await asyncio.sleep(0.8)
        await call.cancel()
        await asyncio.sleep(RING_SECONDS + 1.0)
        assert call.answered_at is None
    (line,) = new_cdr(pbx, before)
    assert line["termination_reason"] == "caller_cancelled"
    assert line["ai_handled"] is False and line["answer"] is None
    await quiet_asterisk(pbx)
    assert ariapp.status()["ai_sessions"] == 0


async def test_caller_hanging_up_mid_greeting_leaves_nothing_behind(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until(lambda: speech_seconds(call.received_audio()) > 0.5, 10, "greeting to start")
        await call.hangup()
    (line,) = new_cdr(pbx, before)
    assert line["ai_handled"] is True and line["termination_reason"] == "caller_hangup"
    await quiet_asterisk(pbx)
    status = await until(lambda: (s := ariapp.status()) and s["ai_sessions"] == 0 and s, 5, "sessions to end")
    assert status["media_sockets"] == 0 and status["clock_ticks_registered"] == 0
    assert status["owned_tasks"] == 0


async def test_ai_without_knowledge_says_honestly_it_is_not_sure(pbx, ariapp, phones):
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        # wait for the end of the greeting: sound, then a second of silence
        await until_greeting(call)
        await until(lambda: silent_tail(call.received_audio(), 1.0), 15, "end of the greeting")
        said_at = len(call.received_audio()) / 8000
        await call.play_and_wait(await speech("The printer on the second floor is broken."))
        await until(lambda: speech_seconds(call.received_audio()[int(said_at * 8000) :]) > 1.5, 25, "a reply")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 15, "end of the reply")
        reply = await transcribe(call.received_audio()[int(said_at * 8000) :])
        assert "not sure" in reply and "support" in reply, reply
        await call.hangup()
    await quiet_asterisk(pbx)


async def test_ari_app_restart_during_live_ai_calls_cleans_up(pbx, ariapp, phones):
    # given three live AI calls (1004 is not registered: the AI answers at once)
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as a, phones("1002") as b, phones("1003") as c:
        calls = await asyncio.gather(*(phone.call("1004", timeout=10) for phone in (a, b, c)))
        await until(
            lambda: all(speech_seconds(call.received_audio()) > 0.5 for call in calls), 10, "every greeting to start"
        )
        # when the ARI app dies (SIGKILL) mid-call and comes back
        ariapp.kill()
        ariapp.start()
        # then the orphaned calls are cleaned up: every phone is hung up, Asterisk holds nothing
        await asyncio.wait_for(asyncio.gather(*(call.ended.wait() for call in calls)), 15)
    await quiet_asterisk(pbx)
    assert pbx.channels() == [] and pbx.bridges() == []
    lines = new_cdr(pbx, before, count=3)
    assert len(lines) == 3 and {line["termination_reason"] for line in lines} == {"app_restart"}
    assert len({line["call_id"] for line in lines}) == 3  # one line per call
    await asyncio.sleep(1.0)
    assert len(pbx.cdr_lines()) == before + 3  # exactly once each


@contextlib.asynccontextmanager
async def app_name_taken(pbx):
    """Another websocket connected under the app's name (a second deployment with the same name, a
    stale process): Asterisk hands it the app and tells ours ``ApplicationReplaced``."""
    import aiohttp

    url = pbx.cfg.ari_url.replace("http", "ws", 1) + "/ari/events"
    auth = aiohttp.BasicAuth(pbx.cfg.ari_user, pbx.cfg.ari_password)
    async with (
        aiohttp.ClientSession(auth=auth) as http,
        http.ws_connect(url, params={"app": pbx.cfg.ari_app, "subscribeAll": "false"}) as ws,
    ):
        yield ws


@pytest.mark.parametrize("fault", ["asterisk_stopped", "asterisk_crashed", "app_name_taken"])
async def test_ari_events_lost_under_live_ai_calls_the_calls_end_cleanly_and_the_next_is_answered(
    pbx, ariapp, phones, fault
):
    """Asterisk restarted under three AI calls (``core stop now``, or SIGKILL: no BYE to anyone), or
    another websocket taking the app's name while the callers hang up: once the app is connected again
    no AI session, media socket, bridge or External Media channel is left, each call has its CDR line
    with the reason, and the next call is answered as usual."""
    # given three live AI calls
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as a, phones("1002") as b, phones("1003") as c:
        calls = await asyncio.gather(*(phone.call("1004", timeout=10) for phone in (a, b, c)))
        await until(
            lambda: all(speech_seconds(call.received_audio()) > 0.5 for call in calls), 10, "every greeting to start"
        )
        # when the app loses Asterisk's events under them
        if fault == "app_name_taken":
            async with app_name_taken(pbx):
                await until(lambda: not ariapp.ready(), 5, "the app to notice it lost its name")
                await asyncio.gather(*(call.hangup() for call in calls))  # unseen by the app
        else:
            await asyncio.to_thread(pbx.asterisk.stop if fault == "asterisk_stopped" else pbx.asterisk.kill)
            await asyncio.to_thread(pbx.asterisk.start)
        # then it connects again and ends every call in its records
        await until(ariapp.ready, 20, "the ARI app to be connected again")
        lines = await asyncio.to_thread(new_cdr, pbx, before, 3, 20.0)
        if fault == "asterisk_stopped":
            assert all(call.ended.is_set() for call in calls)  # Asterisk said BYE on its way down
        for call in calls:  # after a crash nobody can: the phones give up (a BYE Asterisk no longer knows)
            await call.hangup()
    reason = "events_lost" if fault == "app_name_taken" else "asterisk_restart"
    assert sorted(line["termination_reason"] for line in lines) == [reason] * 3, lines
    assert all(line["ai_handled"] for line in lines) and len({line["call_id"] for line in lines}) == 3
    status = await until(lambda: (s := ariapp.status())["ai_sessions"] == 0 and s, 10, "the sessions to end")
    assert status["media_sockets"] == 0 and status["clock_ticks_registered"] == 0
    await quiet_asterisk(pbx)
    recordings = Recordings(pbx.cfg)  # recorded up to the loss, written out like any other call's
    for line in lines:
        assert line["recording_dir"] and recordings.metadata(line["call_id"])["call"]["termination_reason"] == reason
        assert recordings.seconds(line["call_id"], "mixed.wav") > 0.5

    # and the next call is answered and ends as usual
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until_greeting(call, 1.0, 10)
        await call.hangup()
    (line,) = await asyncio.to_thread(new_cdr, pbx, before + 3)
    assert line["termination_reason"] == "caller_hangup" and line["ai_handled"] is True
    await quiet_asterisk(pbx)
    assert len(pbx.cdr_lines()) == before + 4  # exactly once each


async def test_a_phone_call_through_an_ari_app_restart_is_transcribed_after_the_call(pbx, ariapp, phones):
    import json

    import redis
    from django.conf import settings

    from aipbx.queues import TRANSCRIBE_TASK, long_queue

    queue = pbx.cfg.extra_env["AIPBX_CELERY_QUEUE"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as alice, phones("1002") as bob:
        # given a phone-to-phone call being written down live
        outgoing = await alice.dial("1002")
        incoming = await bob.next_incoming(timeout=15)
        await incoming.answer()
        await asyncio.wait_for(outgoing.answered(), 5)
        await until(lambda: any(c["name"].startswith("Snoop/") for c in pbx.channels()), 10, "the snoops")
        # when the ARI app dies (SIGKILL) mid-call and comes back while the call goes on
        ariapp.kill()
        ariapp.start()
        await until(
            lambda: not any(c["name"].startswith(("Snoop/", "UnicastRTP/")) for c in pbx.channels()),
            10,
            "the dead app's snoops and media channels to be cleaned up",
        )
        assert outgoing.ended.is_set() is False  # the people's call is untouched
        await asyncio.sleep(1.0)
        await outgoing.hangup()
    # then the call gets its one CDR line as answered and recorded, and goes to the worker to be transcribed
    (line,) = new_cdr(pbx, before)
    assert line["answered_by"] == "1002" and line["answer"] and line["recording_dir"]

    def queued() -> bool:  # sent just after the CDR line is written (off the event loop): wait for it
        sent = [json.loads(m)["headers"] for m in broker.lrange(long_queue(queue), 0, -1)]
        return any(h["task"] == TRANSCRIBE_TASK and line["call_id"] in h["argsrepr"] for h in sent)

    await until(queued, 10, f"the transcription task for {line['call_id']} on {long_queue(queue)}")
    await quiet_asterisk(pbx)


async def test_a_phone_call_over_the_live_budget_is_transcribed_after_the_call(pbx, ariapp, phones):
    import json

    import redis
    from django.conf import settings

    from aipbx.queues import EXTRACT_TASK, TRANSCRIBE_TASK, long_queue

    queue = long_queue(pbx.cfg.extra_env["AIPBX_CELERY_QUEUE"])
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # given an ARI app that writes down one phone-to-phone call live at a time
    ariapp.stop()
    ariapp.extra_env["AIPBX_LIVE_TRANSCRIPTION_CALLS"] = "1"
    ariapp.start()
    try:
        before = await cdr_baseline(pbx, ariapp)
        async with phones("1001") as a, phones("1002") as b, phones("1003") as c, phones("1004") as d:
            first = await a.dial("1002")
            await (await b.next_incoming(timeout=15)).answer()
            await asyncio.wait_for(first.answered(), 5)
            await until(lambda: len(snoops(pbx)) == 2, 10, "the first call's two snoops")
            # when a second call is answered while the first is written down
            second = await c.dial("1004")
            await (await d.next_incoming(timeout=15)).answer()
            await asyncio.wait_for(second.answered(), 5)
            await asyncio.sleep(1.5)
            # then no recogniser listens to it during the call
            assert len(snoops(pbx)) == 2, snoops(pbx)
            await second.hangup()
            await first.hangup()
        lines = new_cdr(pbx, before, count=2)
        by_caller = {line["caller"]: line["call_id"] for line in lines}

        def sent() -> dict[str, str]:  # call id -> the follow-up task queued for it
            headers = [json.loads(m)["headers"] for m in broker.lrange(queue, 0, -1)]
            return {cid: h["task"] for h in headers for cid in by_caller.values() if cid in h["argsrepr"]}

        # and after the call the worker is asked to transcribe it from its recordings, none is skipped
        await until(lambda: sent().get(by_caller["1003"]) == TRANSCRIBE_TASK, 10, "the post-call transcription")
        assert sent().get(by_caller["1001"]) in (None, EXTRACT_TASK)  # the first was written down live
    finally:
        ariapp.stop()
        ariapp.extra_env.pop("AIPBX_LIVE_TRANSCRIPTION_CALLS", None)
        ariapp.start()
    await quiet_asterisk(pbx)


def snoops(pbx) -> list[str]:
    return [c["name"] for c in pbx.channels() if c["name"].startswith("Snoop/")]


async def test_with_the_ari_app_down_the_caller_hears_an_apology_not_dead_air(pbx, ariapp, phones):
    ariapp.stop()
    try:
        async with phones("1001") as caller:
            call = await caller.call("1004", timeout=10)
            first = await until(lambda: first_sound_at(call.received_audio()), 5, "the apology")
            assert first < 1.0
            await asyncio.wait_for(call.ended.wait(), 15)  # Asterisk hangs up after the apology
            heard = await transcribe(call.received_audio())
            assert "sorry" in heard and "later" in heard, heard
    finally:
        ariapp.start()
    await quiet_asterisk(pbx)


def _metadata(pbx, before: int) -> dict:
    (line,) = new_cdr(pbx, before)
    return Recordings(pbx.cfg).metadata(line["call_id"])


async def test_caller_talking_over_the_greeting_stops_the_ai_at_once(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until_greeting(call, 1.0, 10)
        # when the caller starts talking one second into the greeting
        talk = await speech("Sorry to interrupt, I need help with my order.")
        barge_at = len(call.received_audio()) / 8000
        call.play(talk)
        await asyncio.sleep(2.0)
        heard = call.received_audio()
        # then the AI's audio stops within a fraction of a second (measured at the phone)
        stopped = first_silence_after(heard, barge_at)
        assert stopped is not None and stopped - barge_at < 0.5, (barge_at, stopped)
        await call.hangup()
    greeting = _metadata(pbx, before)["turns"][0]
    assert greeting["speaker"] == "ai" and greeting["interrupted"] is True


def first_silence_after(pcm, at: float, quiet_s: float = 0.3):
    """Start (s) of the first stretch of ``quiet_s`` of silence after ``at``."""
    from softphone.analysis import frame_levels

    levels = frame_levels(pcm)
    need = int(quiet_s * 50)
    run = 0
    for index in range(int(at * 50), len(levels)):
        run = run + 1 if levels[index] < -40 else 0
        if run >= need:
            return (index - need + 1) * 0.02
    return None


async def test_our_own_echo_does_not_interrupt_the_ai(pbx, ariapp, phones):
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        # given a phone that sends back a delayed, attenuated copy of what it hears
        call.set_echo(delay_ms=120, gain_db=-10)
        await until_greeting(call, 2.5, 15)
        await until(lambda: silent_tail(call.received_audio(), 1.5), 20, "the end of the greeting")
        await call.hangup()
    greeting = _metadata(pbx, before)["turns"][0]
    assert greeting["speaker"] == "ai" and greeting["interrupted"] is False
    assert _metadata(pbx, before)["barge_ins"] == 0
