"""Human in the loop, the ARI app's half: when a person is asked, and what the caller hears meanwhile.

Whole conversations with the fake providers of test_conversation_orchestrator; the console is a
fake desk that answers like the real one (queued / away / answer) on the request's id.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from ariapp.conversation.hitl import (
    ASKED_FOR_PERSON,
    LOW_CONFIDENCE,
    MESSAGES,
    SENSITIVE_TOPIC,
    HitlConfig,
    hitl_trigger,
    hold_music,
)
from ariapp.conversation.machine import State
from tests.unit.test_conversation_orchestrator import OWNER, Call, FakeRetriever, FakeSTT, Passage
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

EN = MESSAGES["en"]
FAST = HitlConfig(decision_s=0.3, updates_s=(0.15, 0.3), hold_s=0.45)


@pytest.mark.parametrize(
    "question, reason",
    [
        ("I want to talk to a person, please.", ASKED_FOR_PERSON),
        ("Can I speak with a real human?", ASKED_FOR_PERSON),
        ("담당자와 통화하고 싶어요", ASKED_FOR_PERSON),
        ("상담원 연결해 주세요", ASKED_FOR_PERSON),
        ("I'd like a refund for my order.", SENSITIVE_TOPIC),
        ("계약 조건이 궁금해요", SENSITIVE_TOPIC),
        ("What is the meaning of life?", LOW_CONFIDENCE),
    ],
)
def test_what_makes_the_ai_ask_a_person(question, reason) -> None:
    trigger = hitl_trigger(question, 0.1, 0.3, HitlConfig())
    assert trigger is not None and trigger.reason == reason, trigger


def test_a_question_the_knowledge_answers_stays_with_the_ai() -> None:
    assert hitl_trigger("When do you open?", 0.8, 0.3, HitlConfig()) is None
    assert hitl_trigger("When do you open?", 0.5, 0.3, HitlConfig(min_score=0.6)).reason == LOW_CONFIDENCE
    assert hitl_trigger("When do you open?", None, 0.3, HitlConfig()).detail == "no knowledge"
    assert hitl_trigger("   ", None, 0.3, HitlConfig()) is None


def test_hold_music_is_audible_but_soft() -> None:
    music = hold_music(8000, 2.0)
    assert len(music) == 16000 and 1000 < abs(music).max() <= 2000


class FakeDesk:
    """The console: replies are queued per request id, as on the Redis list."""

    def __init__(self) -> None:
        self.replies: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)

    def push(self, request_id: str, reply: dict) -> None:
        self.replies[request_id].put_nowait(reply)

    async def reply(self, request_id: str, wait_s: float) -> dict | None:
        try:
            return await asyncio.wait_for(self.replies[request_id].get(), wait_s)
        except TimeoutError:
            return None


def with_desk(call: Call, desk: FakeDesk, config: HitlConfig = FAST) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    call.orchestrator.context.desk = desk
    call.orchestrator.context.hitl = config
    call.orchestrator.context.publish = lambda event: events.append((event.TYPE, event.data()))
    return events


def published(events, event_type: str) -> list[dict]:
    return [data for kind, data in events if kind == event_type]


async def test_nobody_available_the_caller_hears_the_away_message_at_once() -> None:
    desk = FakeDesk()
    async with Call(stt=FakeSTT("Can I get a refund?"), retriever=FakeRetriever()) as call:
        events = with_desk(call, desk)
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request = published(events, "hitl.requested")[0]
        desk.push(request["request_id"], {"kind": "away"})
        await call.until(lambda: call.state is State.LISTENING and len(call.ai_texts()) == 2)
        assert call.ai_texts()[-1] == EN["away"].format(owner=OWNER)
        assert (request["reason"], request["question"], request["callee"]) == (
            SENSITIVE_TOPIC,
            "Can I get a refund?",
            "201",
        )
        assert not published(events, "hitl.spoken")


async def test_without_a_console_the_ai_does_not_keep_the_caller_waiting() -> None:
    async with Call(stt=FakeSTT("What is the meaning of life?"), retriever=FakeRetriever()) as call:
        events = with_desk(call, FakeDesk())
        call.say()
        await call.until(lambda: len(call.ai_texts()) == 2, timeout=3)
        assert call.ai_texts()[-1] == EN["away"].format(owner=OWNER)
        assert published(events, "hitl.requested")[0]["reason"] == LOW_CONFIDENCE


async def test_an_operators_answer_ends_the_hold_and_the_conversation_goes_on() -> None:
    desk = FakeDesk()
    stt = FakeSTT("I want to talk to a person.", "When do you open?")
    retriever = FakeRetriever(Passage("We open at nine on weekdays", 0.82))
    config = HitlConfig(decision_s=0.3, updates_s=(5.0,), hold_s=10.0)
    async with Call(stt=stt, retriever=retriever) as call:
        events = with_desk(call, desk, config)
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        desk.push(request_id, {"kind": "queued", "operators": 1})
        await call.until(lambda: call.state is State.HOLDING)
        await call.until(lambda: EN["checking"] in call.heard())
        call.say()  # the caller talks during the hold: nothing is interrupted
        await asyncio.sleep(0.1)
        assert call.state is State.HOLDING
        desk.push(
            request_id, {"kind": "answer", "text": "I checked for you: Mr Kim is back at three.", "operator": "op"}
        )
        await call.until(lambda: call.state is State.LISTENING and "back at three" in call.ai_texts()[-1])
        assert published(events, "hitl.spoken") == [
            {"request_id": request_id, "text": "I checked for you: Mr Kim is back at three."}
        ]
        heard = call.heard()
        assert heard.index(EN["checking"]) < heard.index("I checked for you: Mr Kim is back at three.")
        assert "?" in heard[heard.index(EN["checking"]) :]  # hold music between the two
        # the next question is the AI's again
        call.say()
        await call.until(lambda: call.ai_texts()[-1].endswith("We open at nine on weekdays."))


async def test_a_hold_nobody_answers_gives_updates_in_order_then_a_polite_timeout() -> None:
    desk = FakeDesk()
    async with Call(stt=FakeSTT("Please connect me to a manager."), retriever=FakeRetriever()) as call:
        events = with_desk(call, desk)
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        desk.push(request_id, {"kind": "queued", "operators": 2})
        await call.until(lambda: published(events, "hitl.timeout"), timeout=3)
        await call.until(lambda: call.state is State.LISTENING)
        assert call.ai_texts()[1:] == [EN["checking"], *EN["updates"], EN["timeout"].format(owner=OWNER)]
        assert not published(events, "hitl.spoken")


async def test_a_caller_hanging_up_during_the_hold_cancels_the_request() -> None:
    desk = FakeDesk()
    call = Call(stt=FakeSTT("I want to talk to a person."), retriever=FakeRetriever())
    async with call:
        events = with_desk(call, desk, HitlConfig(decision_s=0.3, hold_s=10.0))
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        desk.push(request_id, {"kind": "queued", "operators": 1})
        await call.until(lambda: call.state is State.HOLDING)
    assert published(events, "hitl.cancelled") == [{"request_id": request_id, "why": "caller_hangup"}]


# --- putting the caller through to a person (ariapp.conversation.transfer) ------------------------------


async def test_a_transfer_during_the_hold_decision_closes_the_request_and_a_failed_one_goes_back_to_the_ai() -> None:
    # the earlier attempt's leftover: "take this call" while the AI waited for the decision left it open
    desk = FakeDesk()
    stt = FakeSTT("I want to talk to a person.", "When do you open?")
    retriever = FakeRetriever(Passage("We open at nine on weekdays", 0.82))
    async with Call(stt=stt, retriever=retriever) as call:
        events = with_desk(call, desk, HitlConfig(decision_s=5.0, hold_s=10.0))
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        # when: the operator clicks while the AI still waits for the decision
        assert call.orchestrator.transferring("Alice")
        # then: the request is closed as transferred, the AI says so and holds the caller
        await call.until(lambda: published(events, "hitl.cancelled"))
        assert published(events, "hitl.cancelled") == [{"request_id": request_id, "why": "transfer"}]
        await call.until(
            lambda: (
                call.state is State.TRANSFERRING
                and "Let me put you through to Alice. One moment please." in call.heard()
            )
        )
        assert not call.orchestrator.transferring("Bob")  # one at a time
        call.say()  # what the caller says meanwhile is not answered
        await asyncio.sleep(0.1)
        assert call.state is State.TRANSFERRING
        # when: the operator does not answer
        call.orchestrator.transfer_settled(False)
        await call.until(lambda: call.state is State.LISTENING and "Alice could not take" in call.ai_texts()[-1])
        # then: the conversation goes on
        call.say()
        await call.until(lambda: call.ai_texts()[-1].endswith("We open at nine on weekdays."))


async def test_a_transfer_the_operator_takes_ends_the_ai_conversation() -> None:
    async with Call(stt=FakeSTT("Hello."), retriever=FakeRetriever()) as call:
        await call.until(lambda: call.state is State.LISTENING)
        assert call.orchestrator.transferring("Alice")
        await call.until(lambda: call.state is State.TRANSFERRING)
        call.orchestrator.transfer_settled(True)
        await call.until(lambda: call.state is State.ENDED)


async def test_an_extension_s_own_hold_and_update_messages_and_music_are_what_the_caller_hears() -> None:
    import numpy as np

    played: list[tuple[int, float]] = []

    def music(rate: int, seconds: float) -> np.ndarray:
        played.append((rate, seconds))
        return np.full(max(1, int(rate * seconds)), 1234, dtype=np.int16)

    desk = FakeDesk()
    config = {
        "hold_message": "Hold on, {owner}'s team is checking.",
        "update_message": "Still on it, thank you.",
        "hold_music": music,
    }
    async with Call(stt=FakeSTT("Please connect me to a manager."), retriever=FakeRetriever(), **config) as call:
        events = with_desk(call, desk)
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request_id = published(events, "hitl.requested")[0]["request_id"]
        desk.push(request_id, {"kind": "queued", "operators": 2})
        await call.until(lambda: published(events, "hitl.timeout"), timeout=3)
        await call.until(lambda: call.state is State.LISTENING)
        texts = call.ai_texts()[1:]
        assert texts[0] == f"Hold on, {OWNER}'s team is checking."
        assert texts[1:3] == ["Still on it, thank you.", "Still on it, thank you."]
        assert EN["checking"] not in texts
        assert played and all(seconds > 0 for _, seconds in played)  # the extension's music, not the tune
