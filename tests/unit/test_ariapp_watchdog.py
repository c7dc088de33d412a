"""The silence watchdog (ariapp.calls.watchdog) and its place in an AI call, on a virtual clock.

The whole-call test drives :class:`AiCall` tick by tick as the media clock would, with a fake ARI
that records requests: no sleeping, no real time, so the 5 s threshold is exact, not raced.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import numpy as np

from aipbx.directory import Extension
from ariapp.calls.media import MediaClock
from ariapp.calls.session import WATCHDOG_TICKS, AiCall, Engine
from ariapp.calls.watchdog import RtpWatchdog
from ariapp.cdr import CallRecord

TICK_S = 0.020


def test_the_watchdog_fires_once_the_count_stood_still_for_the_timeout() -> None:
    dog = RtpWatchdog(5.0, started_at=100.0)

    assert not dog.expired(0, 104.9)  # nothing yet, but the grace from the answer is not over
    assert not dog.expired(3, 105.5)  # packets: the clock starts again
    assert not dog.expired(3, 110.4)
    assert dog.expired(3, 110.5)
    assert dog.silent_for(111.0) == 5.5


def test_a_phone_that_never_sends_anything_is_caught_from_the_answer() -> None:
    dog = RtpWatchdog(5.0, started_at=100.0, received=7)  # 7 packets came before the answer

    assert not dog.expired(7, 104.0)
    assert dog.expired(7, 105.0)


def test_any_new_packet_keeps_the_call_alive() -> None:
    dog = RtpWatchdog(5.0, started_at=0.0)

    assert not any(dog.expired(n, n * 4.9) for n in range(1, 50))


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAri:
    """Answers what an AI call asks of ARI, and remembers it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ...]] = []

    async def external_media(self, channel_id: str, host: str, fmt: str) -> dict:
        self.requests.append(("external_media", channel_id))
        return {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "9"}}

    async def create_bridge(self, bridge_id: str) -> None:
        self.requests.append(("create_bridge", bridge_id))

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        self.requests.append(("add_to_bridge", bridge_id))

    async def answer(self, channel_id: str) -> None:
        self.requests.append(("answer", channel_id))

    async def destroy_bridge(self, bridge_id: str) -> bool:
        self.requests.append(("destroy_bridge", bridge_id))
        return True

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        self.requests.append(("hangup", channel_id))
        return True


def ai_call(tmp_path: Path, ari: FakeAri, clock: VirtualTime, rtp_timeout_s: float) -> AiCall:
    """An echo-mode AI call (no speech models): greeting, then the caller's audio back."""
    loop = asyncio.get_running_loop()

    def waiter(event_type: str, channel_id: str) -> asyncio.Future:
        started = loop.create_future()
        started.set_result(None)  # the media channel's StasisStart, at once
        return started

    async def greeting(ext: Extension, rate: int) -> np.ndarray:
        return np.zeros(rate // 10, dtype=np.int16)

    engine = Engine(stt=None, tts=types.SimpleNamespace(), answerer=None, echo=True, end_of_turn_ms=300, pause_ms=120)
    record = CallRecord(call_id="c1", caller="1001", callee="1004", start="2026-01-01T00:00:00+00:00")
    return AiCall(
        ari=ari,
        clock=MediaClock(),
        engine=engine,
        record=record,
        caller_channel_id="c1",
        ext=Extension("1004", "Support", 10, "en-US", "Hello"),
        media_host="127.0.0.1",
        media_format="ulaw",
        jitter_ms=40,
        recordings_dir=tmp_path,
        greeting_pcm=greeting,
        on_waiter=waiter,
        max_seconds=600,
        journal=lambda record: None,
        rtp_timeout_s=rtp_timeout_s,
        monotonic=clock,
    )


async def answered(call: AiCall) -> asyncio.Task:
    task = asyncio.create_task(call.run())
    for _ in range(100):
        if call.watchdog is not None or call.answered_at is not None:
            break
        await asyncio.sleep(0)
    assert call.answered_at is not None, "the call was not set up"
    return task


def tick(call: AiCall, clock: VirtualTime, seconds: float, *, caller_sends: bool) -> None:
    """Run the media clock's two phases for ``seconds`` of virtual time."""
    for _ in range(round(seconds / TICK_S)):
        clock.now += TICK_S
        if caller_sends:
            call.media.stats.rx_packets += 1
        call._send()
        call._process()


async def test_an_ai_call_whose_caller_stops_sending_rtp_ends_cleanly_after_the_timeout(tmp_path: Path) -> None:
    ari, clock = FakeAri(), VirtualTime()
    call = ai_call(tmp_path, ari, clock, rtp_timeout_s=5)
    task = await answered(call)
    # given a caller whose phone sent RTP for a minute (silence is RTP too)
    tick(call, clock, 60.0, caller_sends=True)
    assert not call.ended.is_set()
    # when it stops sending: nothing happens before the timeout...
    tick(call, clock, 5.0 - WATCHDOG_TICKS * TICK_S, caller_sends=False)
    assert not call.ended.is_set()
    # ...and the call ends by the next look after it
    tick(call, clock, 2 * WATCHDOG_TICKS * TICK_S, caller_sends=False)
    assert call.ended.is_set()
    await asyncio.wait_for(task, 5)
    # then the AI hung up the caller and left nothing in Asterisk, and the CDR says why
    assert ("hangup", "c1") in ari.requests
    assert ("destroy_bridge", "c1-bridge") in ari.requests and ("hangup", "c1-media") in ari.requests
    assert call.record.termination_reason == "rtp_timeout" and call.record.hangup_by == "ai"
    assert call.media.local_port is None  # the socket is closed
    assert (tmp_path / "c1").is_dir()  # recorded up to the end


async def test_no_watchdog_when_it_is_off(tmp_path: Path) -> None:
    ari, clock = FakeAri(), VirtualTime()
    call = ai_call(tmp_path, ari, clock, rtp_timeout_s=0)
    task = await answered(call)
    tick(call, clock, 30.0, caller_sends=False)
    assert not call.ended.is_set() and call.watchdog is None
    call.hangup_by = "caller"
    call.ended.set()
    await asyncio.wait_for(task, 5)
    assert ("hangup", "c1") not in ari.requests  # the caller hung up themselves


async def test_a_caller_who_hung_up_keeps_their_own_reason(tmp_path: Path) -> None:
    ari, clock = FakeAri(), VirtualTime()
    call = ai_call(tmp_path, ari, clock, rtp_timeout_s=5)
    task = await answered(call)
    # the caller's BYE arrives (StasisEnd) while the watchdog's time is up, before the task noticed
    call.hangup_by = "caller"
    call.ended.set()
    tick(call, clock, 6.0, caller_sends=False)
    await asyncio.wait_for(task, 5)
    assert call.record.termination_reason is None and call.record.hangup_by == "caller"
