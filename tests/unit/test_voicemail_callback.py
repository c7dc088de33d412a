"""Voicemail and click-to-call, their pure parts: the message recorder's end rules, the state table's
voicemail path, and a call-back driven by scripted ARI events (a fake client records what was asked)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from aipbx.directory import Directory, Extension
from ariapp.ari.models import AriEvent
from ariapp.calls.callback import ClickToCall, caller_failure, operator_failure
from ariapp.calls.voicemail import HANGUP, MAX_LENGTH, SILENCE, MessageRecorder, write_message
from ariapp.cdr import CdrWriter
from ariapp.conversation.hitl import beep
from ariapp.conversation.machine import Cmd, Ev, State, step
from contract import CallbackRequest, CallbackStatus, CallEnded
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

RATE, FRAME = 8000, 160
LOUD = np.full(FRAME, 3000, np.int16)


def recorder(max_s: float = 10.0, silence_s: float = 1.0) -> MessageRecorder:
    return MessageRecorder(RATE, FRAME, max_s=max_s, silence_s=silence_s)


def test_a_message_ends_after_silence_following_speech() -> None:
    message = recorder(silence_s=1.0)
    ends = [message.feed(LOUD, True) for _ in range(50)]  # one second of speech
    ends += [message.feed(None, False) for _ in range(49)]
    assert set(ends) == {None}
    assert message.feed(None, False) == SILENCE  # the 50th quiet frame: one second
    assert message.feed(LOUD, True) is None and message.ended == SILENCE  # later frames are not kept
    assert message.worth_keeping and message.seconds == pytest.approx(2.0)


def test_saying_nothing_waits_twice_as_long_and_is_not_worth_keeping() -> None:
    message = recorder(silence_s=1.0)
    assert [message.feed(None, False) for _ in range(99)].count(None) == 99
    assert message.feed(None, False) == SILENCE
    assert not message.worth_keeping


def test_a_long_message_ends_at_the_max_length_and_a_hang_up_keeps_what_was_said() -> None:
    message = recorder(max_s=1.0)
    ends = [message.feed(LOUD, True) for _ in range(50)]
    assert ends[-1] == MAX_LENGTH and ends[:-1] == [None] * 49
    early = recorder()
    early.feed(LOUD, True)
    assert early.hang_up() == HANGUP and early.worth_keeping


def test_the_message_file_is_private_and_holds_the_audio(tmp_path: Path) -> None:
    pcm = (np.arange(RATE) % 200 * 10).astype(np.int16)
    path = write_message(tmp_path / "call-1", pcm, RATE)
    assert path.name == "voicemail.wav" and path.stat().st_mode & 0o777 == 0o600
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (RATE, 1)
        assert np.array_equal(np.frombuffer(wav.readframes(RATE), "<i2"), pcm)


def test_the_tone_is_a_1khz_beep() -> None:
    tone = beep(RATE)
    spectrum = np.abs(np.fft.rfft(tone))
    assert len(tone) == RATE // 2 and round(np.argmax(spectrum) * RATE / len(tone)) == 1000


@pytest.mark.parametrize("before", [State.THINKING, State.HOLDING])
def test_voicemail_state_answers_nothing_and_finishing_ends_the_call(before: State) -> None:
    state, _ = step(before, Ev.VOICEMAIL)
    assert state is State.VOICEMAIL
    for event in (Ev.CALLER_ONSET, Ev.UTTERANCE, Ev.SPEECH_DONE, Ev.PROVIDER_FAILED):
        assert step(State.VOICEMAIL, event) == (State.VOICEMAIL, ())
    assert step(State.VOICEMAIL, Ev.FINISHED) == (State.ENDED, (Cmd.END,))
    assert step(State.VOICEMAIL, Ev.HANGUP)[0] is State.ENDED


@pytest.mark.parametrize(
    ("cause", "operator", "caller"),
    [
        (17, "operator_busy", "caller_busy"),
        (21, "operator_declined", "caller_declined"),
        (20, "operator_unregistered", "caller_unreachable"),
        (19, "operator_no_answer", "caller_no_answer"),
        (None, "operator_no_answer", "caller_no_answer"),
    ],
)
def test_why_a_leg_was_not_answered(cause: int | None, operator: str, caller: str) -> None:
    assert (operator_failure(cause), caller_failure(cause)) == (operator, caller)


# --- a call-back against scripted ARI events --------------------------------------------------------
class FakeAri:
    """Records requests; ``script`` says what each originated leg does (answer, or hang up with a cause)."""

    def __init__(self, call: dict[str, int | str], state: str = "online") -> None:
        self.script = call
        self.state = state
        self.asked: list[tuple] = []
        self.click: ClickToCall | None = None

    async def endpoint_state(self, technology: str, resource: str) -> str | None:
        self.asked.append(("endpoint_state", resource))
        return self.state

    async def originate(self, channel_id: str, endpoint: str, **kwargs) -> dict:
        self.asked.append(("originate", channel_id, endpoint))
        what = self.script[channel_id.rsplit("-", 1)[1]]
        asyncio.get_running_loop().call_later(0.01, self._leg, channel_id, what)
        return {"id": channel_id}

    def _leg(self, channel_id: str, what: int | str) -> None:
        assert self.click is not None
        channel = {"id": channel_id, "name": f"PJSIP/x-{channel_id}"}
        if what == "answer":
            self.click.on_event(AriEvent.parse({"type": "StasisStart", "channel": channel}))
        else:
            self.click.on_event(AriEvent.parse({"type": "ChannelDestroyed", "channel": channel, "cause": what}))

    async def play(self, channel_id: str, media: str, playback_id: str | None = None) -> dict:
        self.asked.append(("play", channel_id, media))
        return {}

    async def stop_playback(self, playback_id: str) -> bool:
        return True

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> dict:
        self.asked.append(("bridge", bridge_id))
        return {}

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        self.asked.append(("add", tuple(channel_ids)))

    async def destroy_bridge(self, bridge_id: str) -> bool:
        return True

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        return True


DIRECTORY = Directory(
    (
        Extension("1001", "Minsu", 10, "en-US", "hi"),
        Extension("1002", "Jiyoung", 10, "en-US", "hi"),
        Extension("1003", "Operator", 10, "en-US", "hi"),
    )
)


async def call_back(tmp_path: Path, ari: FakeAri, number: str = "1001", **kwargs) -> tuple[ClickToCall, list]:
    published: list = []
    request = CallbackRequest(
        callback_id="cb1", call_id="t-cb-1", operator_ext="1003", number=number, callee="1002", callback_of="t-1"
    )
    click = ClickToCall(
        ari=ari,  # type: ignore[arg-type]
        request=request,
        directory=DIRECTORY,
        cdr=CdrWriter(tmp_path / "cdr", tmp_path / "state"),
        publish=lambda call_id, event: published.append((call_id, event)),
        ring_s=2,
        **kwargs,
    )
    ari.click = click
    task = asyncio.ensure_future(click.run())
    if ari.script.get("op") == "answer" and ari.script.get("peer") == "answer":
        await asyncio.sleep(0.1)  # connected: now the caller hangs up
        click.on_event(AriEvent.parse({"type": "ChannelDestroyed", "channel": {"id": "t-cb-1-peer"}, "cause": 16}))
    await asyncio.wait_for(task, 5)
    return click, published


def statuses(published: list) -> list[tuple[str, str]]:
    return [(e.status, e.reason) for _, e in published if isinstance(e, CallbackStatus)]


async def test_the_operator_answers_then_the_caller_and_they_are_bridged(tmp_path: Path) -> None:
    ari = FakeAri({"op": "answer", "peer": "answer"})
    click, published = await call_back(tmp_path, ari)
    assert [a for a in ari.asked if a[0] == "originate"] == [
        ("originate", "t-cb-1-op", "PJSIP/1003"),
        ("originate", "t-cb-1-peer", "PJSIP/1001"),
    ]
    assert ("play", "t-cb-1-op", "tone:ring") in ari.asked  # the operator hears it ring
    assert ("add", ("t-cb-1-op", "t-cb-1-peer")) in ari.asked
    assert statuses(published) == [("ringing_operator", ""), ("ringing_caller", ""), ("connected", ""), ("ended", "")]
    [cdr] = [e.cdr for _, e in published if isinstance(e, CallEnded)]
    assert (cdr["caller"], cdr["callee"], cdr["answered_by"], cdr["termination_reason"]) == (
        "1001",
        "1002",
        "PJSIP/1003",
        "caller_hangup",
    )


@pytest.mark.parametrize(
    ("script", "state", "reason", "dialled"),
    [
        ({"op": 17}, "online", "operator_busy", 1),
        ({"op": 19}, "online", "operator_no_answer", 1),
        ({}, "offline", "operator_unregistered", 0),
        ({"op": "answer", "peer": 17}, "online", "caller_busy", 2),
        ({"op": "answer", "peer": 19}, "online", "caller_no_answer", 2),
    ],
)
async def test_a_failed_call_back_says_why(tmp_path: Path, script: dict, state: str, reason: str, dialled: int) -> None:
    ari = FakeAri(script, state)
    click, published = await call_back(tmp_path, ari)
    assert statuses(published)[-1] == ("failed", reason)
    assert len([a for a in ari.asked if a[0] == "originate"]) == dialled
    [cdr] = [e.cdr for _, e in published if isinstance(e, CallEnded)]
    assert cdr["termination_reason"] == reason and cdr["answer"] is None


async def test_an_outside_number_needs_the_trunk(tmp_path: Path) -> None:
    ari = FakeAri({"op": "answer", "peer": "answer"})
    _, published = await call_back(tmp_path, FakeAri({}), number="01012345678")
    assert statuses(published) == [("failed", "no_outside_line")]
    click, _ = await call_back(tmp_path, ari, number="01012345678", trunk="kt")
    assert ("originate", "t-cb-1-peer", "PJSIP/01012345678@kt") in ari.asked


# --- the conversation's side: away or timeout, then the prompt, the tone, the message, goodbye ----------
class FakeTaker:
    """The call session's ``take_message``: records what was asked, ends the message when told."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.over: asyncio.Future[str] | None = None

    async def take_message(self, request_id: str, reason: str) -> str:
        self.asked.append((request_id, reason))
        self.over = asyncio.get_running_loop().create_future()
        return await self.over


@pytest.mark.parametrize("reason", ["away", "timeout"])
async def test_nobody_answers_the_caller_is_asked_for_a_message_after_a_tone_and_the_call_ends(reason: str) -> None:
    from tests.unit.test_conversation_hitl import EN, FakeDesk, published, with_desk
    from tests.unit.test_conversation_orchestrator import OWNER, Call, FakeRetriever, FakeSTT

    desk, taker = FakeDesk(), FakeTaker()
    async with Call(stt=FakeSTT("Can I get a refund?"), retriever=FakeRetriever()) as call:
        events = with_desk(call, desk)
        call.orchestrator.context.voicemail = taker
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        desk.push(request_id, {"kind": "away"} if reason == "away" else {"kind": "queued", "operators": 1})
        await call.until(lambda: bool(taker.asked), timeout=3)
        # the apology and the prompt, then the tone (not speech), and only then the recording starts
        said = f"{EN[reason].format(owner=OWNER)} {EN['voicemail']}"
        assert call.state is State.VOICEMAIL and call.ai_texts()[-1] == said
        assert call.heard()[-2:] == [said, "?"]  # "?": frames no sentence made, the tone
        assert taker.asked == [(request_id, reason)]
        assert bool(published(events, "hitl.timeout")) == (reason == "timeout")
        call.say()  # the message itself is answered by nobody
        await asyncio.sleep(0.1)
        assert call.state is State.VOICEMAIL and len(published(events, "hitl.requested")) == 1
        assert taker.over is not None
        taker.over.set_result(SILENCE)
        await call.until(lambda: call.state is State.ENDED, timeout=3)
        assert call.ai_texts()[-1] == EN["voicemail_end"]
