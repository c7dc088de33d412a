"""Admission control (ariapp.calls.admission): while answers are slower than the node's target, new AI
calls hear the busy message; calls in progress go on, and a node that recovers admits again.

The decision runs on a virtual clock; the app is driven as in test_ariapp_limits (recorded-shape
StasisStart events, a fake ARI), with answer latencies published as the orchestrator publishes them.
"""

from __future__ import annotations

import asyncio
import threading
import time

from aipbx.providers.local import workers
from ariapp.ari.client import BUSY_CONTEXT
from ariapp.calls.admission import Admission
from contract import Latency
from tests.unit.test_ariapp_limits import FakeAri, events, journal, make_app, sample, settle, stasis_start

__all__ = ["make_app"]  # the fixture, used by name


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_slow_answers_close_the_door_and_it_opens_again_when_they_age_out() -> None:
    clock = Clock()
    admission = Admission(target_s=2.0, window_s=20.0, min_samples=3, clock=clock)
    # two slow answers are not yet a trend
    admission.observe(4.0)
    admission.observe(5.0)
    assert not admission.overloaded()
    # a third makes the median 4 s > 2 s
    admission.observe(4.5)
    assert admission.overloaded() and admission.median_s() == 4.5
    # fast answers bring the median back under the target
    for _ in range(4):
        admission.observe(0.9)
    assert not admission.overloaded()
    # slow again, then 21 s of nothing: the window empties and the node admits
    for _ in range(9):
        admission.observe(6.0)
    assert admission.overloaded()
    clock.now += 21.0
    assert not admission.overloaded() and admission.median_s() is None


def test_zero_turns_admission_control_off() -> None:
    admission = Admission(target_s=0.0)
    for _ in range(10):
        admission.observe(30.0)
    assert not admission.overloaded()


async def test_while_answers_are_slow_a_new_ai_call_hears_the_busy_message(make_app) -> None:
    ari = FakeAri()
    app = make_app(per_caller=0, total=0, ari=ari)
    before = sample("aipbx_ai_calls_rejected_total", limit="capacity")
    # given two AI calls in progress whose answers took 3.5-4.2 s (the default target is 3 s)
    app.on_event(stasis_start("c1", "1001", "1002"))
    app.on_event(stasis_start("c2", "1003", "1002"))
    for call_id, first_rtp in (("c1", 3900.0), ("c2", 4200.0), ("c1", 3500.0)):
        app.publish(call_id, Latency({"stt_final": 800.0, "first_rtp": first_rtp}))
    # when a third caller comes in
    app.on_event(stasis_start("c3", "1009", "1005"))
    await settle()
    # then it is turned away politely (Korean extension: the Korean busy message), the others go on
    assert set(app.sessions) == {"c1", "c2"}
    assert ari.requests == [("continue", "c3", BUSY_CONTEXT, "ko")]
    assert journal(app, "c3")["termination_reason"] == "limit_capacity"
    [event] = events(app, "call.rejected")
    assert (event["call_id"], event["limit"]) == ("c3", "capacity")
    assert sample("aipbx_ai_calls_rejected_total", limit="capacity") == before + 1


async def test_fast_answers_keep_the_door_open(make_app) -> None:
    ari = FakeAri()
    app = make_app(per_caller=0, total=0, ari=ari)
    app.on_event(stasis_start("c1", "1001", "1002"))
    for first_rtp in (850.0, 900.0, 1100.0, 2800.0):
        app.publish("c1", Latency({"first_rtp": first_rtp}))
    app.on_event(stasis_start("c2", "1009", "1002"))
    await settle()
    assert set(app.sessions) == {"c1", "c2"} and ari.requests == []


async def test_the_time_an_utterance_waits_for_the_recogniser_is_measured_per_lane() -> None:
    before = sample("aipbx_stt_queue_seconds_count", lane="transcript")
    worker = workers.worker("test-queue")
    loop = asyncio.get_running_loop()
    # one job holds the worker 0.2 s; the next one waits behind it
    first = loop.run_in_executor(worker, workers.queued("transcript", lambda: time.sleep(0.2)))
    second = loop.run_in_executor(worker, workers.queued("transcript", lambda: None))
    await asyncio.gather(first, second)
    assert sample("aipbx_stt_queue_seconds_count", lane="transcript") == before + 2
    waited = sample("aipbx_stt_queue_seconds_bucket", lane="transcript", le="0.1")
    total = sample("aipbx_stt_queue_seconds_count", lane="transcript")
    assert waited <= total - 1  # the second waited ~0.2 s: not in the 0.1 s bucket


async def test_the_recogniser_is_busy_while_a_job_is_queued_or_running_and_idle_after() -> None:
    from aipbx.providers.local.stt import WhisperSTT

    stt = WhisperSTT("tiny.en", lane="test-busy", executor=workers.worker("test-busy"))
    release = threading.Event()
    assert not stt.busy
    running = asyncio.ensure_future(stt._run(release.wait))
    queued = asyncio.ensure_future(stt._run(lambda: None))
    await asyncio.sleep(0.05)
    assert stt.busy and workers.pending("test-busy") == 2
    release.set()
    await asyncio.gather(running, queued)
    assert not stt.busy
    # a job cancelled while it waited is given back too
    release.clear()
    running = asyncio.ensure_future(stt._run(release.wait))
    cancelled = asyncio.ensure_future(stt._run(lambda: None))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    await asyncio.gather(running, cancelled, return_exceptions=True)
    await asyncio.sleep(0.05)
    assert workers.pending("test-busy") == 0
