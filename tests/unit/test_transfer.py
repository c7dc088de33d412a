"""Transfer to a person: the briefing, the AI's hold while the phone rings, and PhoneTransfer against
scripted ARI events (ring, answer, brief, bridge; or no answer / hang-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ariapp.ari.models import AriEvent
from ariapp.calls.transfer import PhoneTransfer
from ariapp.conversation.machine import Ev
from ariapp.conversation.transfer import Heard, briefing, clip, hold_for_transfer, message
from contract import TransferRequest, TransferStatus


def test_the_briefing_says_who_what_they_asked_and_what_the_ai_said_briefly() -> None:
    heard = Heard(
        caller="1001",
        owner="Jiyoung",
        question="Can I talk to a real person about my parking permit, it expired last week and I need a new one?",
        ai_said="The parking office is on the first floor.",
    )
    text = briefing(heard, "en-US")
    assert text.startswith("Call from 1 0 0 1 for Jiyoung. They asked: Can I talk to a real person about my")
    assert text.endswith("I said: The parking office is on the first floor.")
    assert "need a new one" not in text  # clipped: the caller is waiting
    assert len(text.split()) < 35
    korean = briefing(Heard(caller="1001", owner="이지영", question="담당자 연결해 주세요"), "ko-KR")
    assert "이지영" in korean and "담당자 연결해 주세요" in korean and "AI 답변" not in korean


def test_clip_and_the_spoken_messages() -> None:
    assert clip("one two three.", 5) == "one two three"
    assert clip("a b c d e f", 3) == "a b c …"
    assert message("connecting", "en-US", "Alice") == "Let me put you through to Alice. One moment please."
    assert "a colleague" in message("failed", "en-US", "")
    assert "님께 연결" in message("connecting", "ko-KR", "김")


@pytest.mark.parametrize("connected", [True, False])
async def test_the_ai_holds_the_caller_until_the_transfer_settles_then_is_done_or_says_so(connected: bool) -> None:
    said: list[str] = []
    posted: list[Ev] = []
    music = 0
    settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def say(text: str) -> None:
        said.append(text)

    async def music_until(done: asyncio.Future[bool]) -> None:
        nonlocal music
        music += 1
        if music == 3:
            done.set_result(connected)

    await asyncio.wait_for(
        hold_for_transfer(
            operator="Alice", language="en-US", settled=settled, say=say, music_until=music_until, post=posted.append
        ),
        2,
    )
    assert said[0] == "Let me put you through to Alice. One moment please." and music == 3
    if connected:
        assert posted == [Ev.TRANSFERRED] and len(said) == 1
    else:
        assert posted == [Ev.HUMAN_REPLY] and "Alice could not take your call" in said[1]


class FakeAri:
    """``script``: what the operator's leg does (answer, or hang up with a cause); the briefing plays at once."""

    def __init__(self, leg: int | str, state: str = "online", hang_up_during_briefing: bool = False) -> None:
        self.leg, self.state, self.hang_up_during_briefing = leg, state, hang_up_during_briefing
        self.asked: list[tuple] = []
        self.transfer: PhoneTransfer | None = None

    async def endpoint_state(self, technology: str, resource: str) -> str | None:
        return self.state

    async def originate(self, channel_id: str, endpoint: str, **kwargs) -> dict:
        self.asked.append(("originate", channel_id, endpoint, kwargs["timeout_s"]))
        asyncio.get_running_loop().call_later(0.01, self._leg, channel_id)
        return {}

    def _leg(self, channel_id: str) -> None:
        assert self.transfer is not None
        channel = {"id": channel_id, "name": "PJSIP/1003-1"}
        if self.leg == "answer":
            self.transfer.on_event(AriEvent.parse({"type": "StasisStart", "channel": channel}))
        elif self.leg != "ring":
            self.transfer.on_event(AriEvent.parse({"type": "ChannelDestroyed", "channel": channel, "cause": self.leg}))

    async def global_variable(self, name: str) -> str | None:
        return "/var/spool/aipbx/sounds" if name == "AIPBX_SOUNDS" else None

    async def play(self, channel_id: str, media: str, playback_id: str | None = None) -> dict:
        self.asked.append(("play", channel_id, media))
        assert self.transfer is not None
        if self.hang_up_during_briefing:
            event = {"type": "ChannelDestroyed", "channel": {"id": channel_id}, "cause": 16}
        else:
            event = {"type": "PlaybackFinished", "playback": {"id": playback_id}}
        asyncio.get_running_loop().call_later(0.01, self.transfer.on_event, AriEvent.parse(event))
        return {}

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        self.asked.append(("add", bridge_id, tuple(channel_ids)))

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        self.asked.append(("hangup", channel_id))
        return True


async def transfer(tmp_path: Path, ari: FakeAri, caller_gone=lambda: False) -> tuple[str, list]:
    published: list = []
    wav = tmp_path / "transfer-t1.wav"

    async def make_briefing() -> tuple[Path, float]:
        wav.write_bytes(b"RIFF")
        wav.with_suffix(".txt").write_text("Call from 1 0 0 1", encoding="utf-8")
        return wav, 0.5

    request = TransferRequest(transfer_id="t1", call_id="dev-1", operator_ext="1003", operator="Alice")
    phone = PhoneTransfer(
        ari=ari,  # type: ignore[arg-type]
        request=request,
        caller_number="1001",
        bridge_id="dev-1-bridge",
        briefing=make_briefing,
        publish=lambda call_id, event: published.append((call_id, event)),
        ring_s=1,
    )
    ari.transfer = phone
    failure = await asyncio.wait_for(phone.run(caller_gone), 10)
    assert not wav.exists() and not wav.with_suffix(".txt").exists()  # the briefing file is removed
    return failure, [(e.status, e.reason) for _, e in published if isinstance(e, TransferStatus)]


async def test_the_operator_answers_hears_the_briefing_alone_then_joins_the_callers_bridge(tmp_path: Path) -> None:
    ari = FakeAri("answer")
    failure, statuses = await transfer(tmp_path, ari)
    leg = "dev-1-xfer-t1"
    assert failure == "" and statuses == [("ringing", ""), ("briefing", ""), ("connected", "")]
    assert ari.asked == [
        ("originate", leg, "PJSIP/1003", 1),
        ("play", leg, "sound:/var/spool/aipbx/sounds/transfer-t1"),  # the operator's leg only
        ("add", "dev-1-bridge", (leg,)),  # then the caller's own bridge: same call, same recording
    ]


@pytest.mark.parametrize(
    ("leg", "state", "reason"),
    [
        ("ring", "online", "operator_no_answer"),  # rang out: our ring time passed
        (21, "online", "operator_declined"),
        (17, "online", "operator_busy"),
        ("answer", "offline", "operator_unregistered"),
    ],
)
async def test_an_operator_who_does_not_take_the_call_fails_the_transfer(tmp_path: Path, leg, state, reason) -> None:
    ari = FakeAri(leg, state)
    failure, _ = await transfer(tmp_path, ari)
    assert failure == reason
    assert not [a for a in ari.asked if a[0] == "add"]  # the caller's bridge never saw the operator


async def test_an_operator_who_hangs_up_during_the_briefing_is_not_bridged(tmp_path: Path) -> None:
    ari = FakeAri("answer", hang_up_during_briefing=True)
    failure, statuses = await transfer(tmp_path, ari)
    assert failure == "operator_hung_up" and ("briefing", "") in statuses
    assert not [a for a in ari.asked if a[0] == "add"]


class ListeningAri(FakeAri):
    """The operator's leg answers; the snoop enters Stasis; the bridges are recorded."""

    async def snoop(self, channel_id: str, snoop_id: str, spy: str = "in") -> dict:
        self.asked.append(("snoop", channel_id, snoop_id, spy))
        assert self.transfer is not None
        started = AriEvent.parse({"type": "StasisStart", "channel": {"id": snoop_id, "name": "Snoop/x"}})
        asyncio.get_running_loop().call_later(0.01, self.transfer.on_event, started)
        return {}

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> dict:
        self.asked.append(("bridge", bridge_id))
        return {}

    async def destroy_bridge(self, bridge_id: str) -> bool:
        self.asked.append(("destroy", bridge_id))
        return True


def listening(ari: ListeningAri) -> tuple[PhoneTransfer, list, asyncio.Event]:
    published: list = []
    heard = asyncio.Event()  # the operator is listening

    def publish(call_id: str, event: TransferStatus) -> None:
        published.append(event.status)
        if event.status == "listening":
            heard.set()

    async def no_briefing() -> tuple[Path, float]:
        raise AssertionError("a listener hears the call itself, no briefing")

    request = TransferRequest(transfer_id="t2", call_id="dev-2", operator_ext="1003", mode="listen")
    phone = PhoneTransfer(
        ari=ari,  # type: ignore[arg-type]
        request=request,
        caller_number="1001",
        bridge_id="dev-2-bridge",
        caller_channel="dev-2",
        briefing=no_briefing,
        publish=publish,  # type: ignore[arg-type]
        ring_s=1,
    )
    ari.transfer = phone
    return phone, published, heard


async def test_a_listener_hears_the_callers_channel_through_a_snoop_of_its_own_and_may_take_over() -> None:
    ari = ListeningAri("answer")
    phone, statuses, heard = listening(ari)
    run = asyncio.ensure_future(phone.run(lambda: False))
    await asyncio.wait_for(heard.wait(), 5)
    leg, snoop, bridge = "dev-2-listen-t2", "dev-2-listen-t2-snoop", "dev-2-listen-t2-bridge"
    assert ari.asked == [
        ("originate", leg, "PJSIP/1003", 1),
        ("snoop", "dev-2", snoop, "both"),  # caller and what the caller hears (the AI); whisper none
        ("bridge", bridge),
        ("add", bridge, (snoop, leg)),  # the caller's own bridge is untouched
    ]
    assert phone.channel_ids == (leg, snoop) and phone.bridge_ids == (bridge,)
    await asyncio.sleep(0.05)
    assert not run.done()  # listening lasts until the operator decides
    assert phone.take_over()
    assert await asyncio.wait_for(run, 5) == ""
    assert ari.asked[4:] == [("destroy", bridge), ("hangup", snoop), ("add", "dev-2-bridge", (leg,))]
    assert statuses == ["ringing", "listening", "connected"]
    assert not phone.take_over()  # already taken


async def test_a_listener_who_hangs_up_ends_the_listen_and_leaves_the_caller_with_the_ai() -> None:
    from ariapp.calls.transfer import LISTEN_ENDED

    ari = ListeningAri("answer")
    phone, statuses, heard = listening(ari)
    run = asyncio.ensure_future(phone.run(lambda: False))
    await asyncio.wait_for(heard.wait(), 5)
    phone.on_event(AriEvent.parse({"type": "ChannelDestroyed", "channel": {"id": phone.operator_leg}, "cause": 16}))
    assert await asyncio.wait_for(run, 5) == LISTEN_ENDED
    assert not [a for a in ari.asked if a[0] == "add" and a[1] == "dev-2-bridge"]
    assert ("hangup", phone.snoop_id) in ari.asked


def test_a_request_says_what_it_asks_for() -> None:
    from contract import BadRequest

    request = TransferRequest(transfer_id="t3", call_id="dev-3", operator_ext="1003", mode="take_over")
    assert TransferRequest.from_json(request.to_json()) == request
    assert TransferRequest.from_json('{"transfer_id": "t", "call_id": "c", "operator_ext": "1003"}').mode == "transfer"
    with pytest.raises(BadRequest, match="mode"):
        TransferRequest(transfer_id="t", call_id="c", operator_ext="1003", mode="spy")
