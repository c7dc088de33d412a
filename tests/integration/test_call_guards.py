"""The AI call caps and the silence watchdog, over real SIP through a real Asterisk 22 (issue 15).

The ARI app runs here with one AI call per caller and a 5 s RTP watchdog. Each test judges what
the caller's phone noticed (what it heard, the SIP answer it got, when it was hung up), what the CDR
line and the metrics say, and that Asterisk holds nothing afterwards.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from softphone import CallFailed
from softphone.analysis import speech_seconds
from stack.instance import AppProcess
from tests.integration.audio_checks import Recordings, transcribe, until
from tests.integration.test_telephony import cdr_baseline, new_cdr, quiet_asterisk

pytestmark = [pytest.mark.asterisk]

RTP_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def guarded_app(pbx, ariapp):
    """The ARI app with a cap of one AI call per caller and a 5 s watchdog, in place of the session's."""
    ariapp.stop()
    app = AppProcess(
        pbx.cfg,
        {"AIPBX_MAX_AI_CALLS_PER_CALLER": "1", "AIPBX_MAX_AI_CALLS": "10", "AIPBX_RTP_TIMEOUT_S": str(RTP_TIMEOUT_S)},
    )
    try:
        app.start()
        yield app
    finally:
        app.stop()
        ariapp.start()


def metric(app: AppProcess, name: str, **labels: str) -> float:
    with urllib.request.urlopen(app.status_url + "/metrics", timeout=2.0) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_a_second_ai_call_from_the_same_phone_hears_the_busy_message_and_gets_486(pbx, guarded_app, phones):
    busy_sound = pbx.cfg.sounds_dir / "ai-busy-en-US.wav"
    await until(busy_sound.exists, 90, "the busy message to be synthesised at start-up")
    before = await cdr_baseline(pbx, guarded_app)
    rejected = metric(guarded_app, "aipbx_ai_calls_rejected_total", limit="per_caller")
    async with phones("1001") as caller:
        # given an AI call from 1001 in progress (1004 is not registered: the AI answers at once)
        first = await caller.call("1004", timeout=10)
        # when the same phone calls again, another extension the AI answers
        second = await caller.dial("1003")
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(second.answered(), 30)
        # then it was never answered: it heard the busy message as early media, then 486 Busy Here
        assert failed.value.status == 486
        heard = await transcribe(second.early_audio())
        assert "try again later" in heard, heard
        # and the first call is untouched
        assert first.state == "confirmed" and not first.ended.is_set()
        await first.hangup()

    lines = {line["callee"]: line for line in new_cdr(pbx, before, 2)}
    refused, served = lines["1003"], lines["1004"]
    assert refused["termination_reason"] == "limit_per_caller" and refused["caller"] == "1001"
    assert refused["ai_handled"] is False and refused["answer"] is None and refused["hangup_cause"] == 17
    assert served["termination_reason"] == "caller_hangup" and served["ai_handled"] is True
    assert metric(guarded_app, "aipbx_ai_calls_rejected_total", limit="per_caller") == rejected + 1
    assert metric(guarded_app, "aipbx_calls_total", outcome="limit_per_caller") >= 1
    await quiet_asterisk(pbx)


async def test_a_phone_that_stops_sending_rtp_is_hung_up_by_the_watchdog(pbx, guarded_app, phones):
    before = await cdr_baseline(pbx, guarded_app)
    async with phones("1001") as caller:
        # given an AI call whose caller says nothing for longer than the watchdog's time (silence is RTP too)
        call = await caller.call("1004", timeout=10)
        await asyncio.sleep(RTP_TIMEOUT_S + 1.5)
        assert call.state == "confirmed" and not call.ended.is_set()
        # when the caller's phone stops sending RTP (crashed, lost its network) without a BYE
        call.stop_sending()
        muted = time.monotonic()
        # then the AI hangs up after the watchdog's time, with a BYE
        await asyncio.wait_for(call.ended.wait(), RTP_TIMEOUT_S + 10)
        waited = time.monotonic() - muted
        assert waited >= RTP_TIMEOUT_S - 0.5, waited
        assert call.end_reason == "remote_bye"

    (line,) = new_cdr(pbx, before)
    assert line["termination_reason"] == "rtp_timeout" and line["hangup_by"] == "ai"
    assert line["ai_handled"] is True and line["answered_by"] == "ai"
    recordings, call_id = Recordings(pbx.cfg), line["call_id"]
    await until(lambda: recordings.exists(call_id, "metadata.json"), 5, "metadata.json")
    assert abs(recordings.seconds(call_id, "mixed.wav") - line["billsec"]) < 1.0  # recorded to the end
    assert speech_seconds(*recordings.pcm(call_id, "callee.wav")) > 2.0  # the greeting
    await quiet_asterisk(pbx)
