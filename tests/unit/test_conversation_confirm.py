""" "Did you mean …?": the AI checks the likeliest passage with the caller instead of guessing or giving up.

Whole conversations with the fake providers of test_conversation_orchestrator and a fake gate that
says how likely its best passage is.
"""

from __future__ import annotations

import pytest

from ariapp.conversation.answerer import UNSURE
from ariapp.conversation.confirm import CONFIRM_AT, offer_for, reply_to_offer
from ariapp.conversation.hitl import ASKED_FOR_PERSON, LOW_CONFIDENCE, MESSAGES
from ariapp.conversation.machine import State
from knowledge.retrieval.relevance import Judgement
from tests.unit.test_conversation_hitl import FakeDesk, published, with_desk
from tests.unit.test_conversation_orchestrator import OWNER, Call, FakeRetriever, FakeSTT, Passage
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

IMPLANT = Passage(
    "A single implant costs 1.2 million won, crown included.",
    0.55,
    {"item_id": 11, "question": "How much does a dental implant cost?", "heading": "Prices"},
)
PARKING = Passage("Parking is free for two hours behind the building.", 0.5, {"item_id": 12, "heading": "Parking"})
LEARNED = Passage("From next week we open on Saturdays.", 0.6, {"item_id": 13, "question": "", "heading": ""})
ASKED_IMPLANT = "Just to check, are you asking: how much does a dental implant cost?"
NOT_SURE = UNSURE["en"].format(owner=OWNER)


class GateRetriever(FakeRetriever):
    """The relevance gate's verdict: the best passage at ``probability``, answered from 0.82."""

    def __init__(self, *passages: Passage, probability: float, runner_up: float = 0.05) -> None:
        super().__init__(*passages)
        self.probability = probability
        self.runner_up = runner_up  # the second passage's (and any later one's)

    async def judge(
        self, question: str, passages: list[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        candidates = [(p, self.probability if i == 0 else self.runner_up, {}) for i, p in enumerate(passages)]
        chosen = passages[0] if passages and self.probability >= 0.82 else None
        return Judgement(chosen, self.probability, candidates, answer_at=0.82)


async def conversation(stt: FakeSTT, retriever: FakeRetriever, turns: int, **config) -> Call:
    async with Call(stt=stt, retriever=retriever, **config) as call:
        for n in range(turns):
            call.say()
            await call.until(lambda n=n: len(call.ai_texts()) == n + 2 and call.state is State.LISTENING, timeout=3)
    return call


async def test_a_likely_passage_is_checked_with_the_caller_and_answered_when_they_agree() -> None:
    # given the gate finds the implant FAQ likely (0.55) but not sure enough to say it
    retriever = GateRetriever(IMPLANT, PARKING, probability=0.55)
    # when the caller asks in other words, hears the check and says yes
    call = await conversation(FakeSTT("What do you charge for an implant?", "Yes, please."), retriever, turns=2)
    # then the AI asked with the owner's own question, then said the owner's answer
    assert call.ai_texts()[1:] == [ASKED_IMPLANT, IMPLANT.text]
    assert " ".join(call.heard()[1:]) == f"{ASKED_IMPLANT} {IMPLANT.text}"  # heard in clauses
    assert retriever.queries == [("201", "What do you charge for an implant?")]  # "Yes, please." is no search
    agreed = call.orchestrator.turns[3]
    assert agreed.retrieved == [{"text": IMPLANT.text, "score": 0.55, "item_id": 11, "p": 0.55, "used": True}]
    assert call.orchestrator.offers == 1


async def test_a_caller_who_says_no_hears_that_the_ai_is_not_sure_never_the_passage() -> None:
    retriever = GateRetriever(IMPLANT, probability=0.55)
    call = await conversation(FakeSTT("How much is a crown?", "No."), retriever, turns=2)
    assert call.ai_texts()[1:] == [ASKED_IMPLANT, NOT_SURE]
    assert IMPLANT.text not in " ".join(call.heard())


async def test_after_a_no_the_runner_up_is_checked_once_and_answered_when_the_caller_agrees() -> None:
    # the gate's two likeliest read alike to it (0.55 and 0.4): the caller meant the second
    retriever = GateRetriever(IMPLANT, PARKING, probability=0.55, runner_up=0.4)
    call = await conversation(FakeSTT("Is it much to leave the car?", "No.", "Yes."), retriever, turns=3)
    assert call.ai_texts()[1:] == [ASKED_IMPLANT, "Or is it about parking?", PARKING.text]
    assert IMPLANT.text not in " ".join(call.heard())
    assert call.orchestrator.offers == 2
    assert call.orchestrator.turns[5].retrieved[0]["item_id"] == 12  # the caller's yes: the runner-up used


async def test_two_noes_leave_the_ai_not_sure_and_no_third_check() -> None:
    retriever = GateRetriever(IMPLANT, PARKING, probability=0.55, runner_up=0.4)
    call = await conversation(FakeSTT("How much is a crown?", "No.", "No."), retriever, turns=3)
    assert call.ai_texts()[1:] == [ASKED_IMPLANT, "Or is it about parking?", NOT_SURE]
    assert IMPLANT.text not in " ".join(call.heard()) and PARKING.text not in " ".join(call.heard())


def test_the_runner_up_is_offered_only_from_the_check_level_and_with_another_topic() -> None:
    fees = Passage("Late cancellations cost 20,000 won.", 0.5, {"item_id": 14, "heading": "Parking"})

    def offer(*candidates: tuple[Passage, float]):
        judged = Judgement(None, candidates[0][1], [(p, q, {}) for p, q in candidates])
        return offer_for("How much is it?", judged, "en")

    first = offer((IMPLANT, 0.5), (PARKING, 0.3))
    assert first is not None and first.then is not None and first.then.passage is PARKING
    assert first.then.then is None  # twice at most
    assert offer((IMPLANT, 0.5), (PARKING, CONFIRM_AT - 0.01)).then is None
    assert offer((PARKING, 0.5), (fees, 0.45)).then is None  # "is it about parking?" twice says nothing new
    korean = offer_for("주차 돼요?", Judgement(None, 0.5, [(IMPLANT, 0.5, {}), (PARKING, 0.4, {})]), "ko")
    assert korean is not None and korean.then is not None and korean.then.text.startswith("아니면 ")


async def test_no_i_meant_is_heard_as_a_new_question() -> None:
    retriever = GateRetriever(IMPLANT, probability=0.55)
    call = await conversation(FakeSTT("How much is a crown?", "No, I meant the parking fee."), retriever, turns=2)
    assert retriever.queries[-1] == ("201", "I meant the parking fee.")
    assert call.ai_texts()[2] == ASKED_IMPLANT  # the fake gate offers its best passage again


async def test_another_question_instead_of_yes_or_no_is_searched_as_asked() -> None:
    retriever = GateRetriever(IMPLANT, probability=0.55)
    await conversation(FakeSTT("How much is a crown?", "Where can I park?"), retriever, turns=2)
    assert [q for _, q in retriever.queries] == ["How much is a crown?", "Where can I park?"]


async def test_a_heading_is_offered_as_the_topic() -> None:
    call = await conversation(
        FakeSTT("Is there somewhere to leave the car?"), GateRetriever(PARKING, probability=0.4), 1
    )
    assert call.ai_texts()[1] == "Just to check, is it about parking?"


async def test_a_heading_two_passages_share_is_offered_with_what_each_is_about_and_a_no_gets_the_other() -> None:
    # "is it about prices?" would be a yes to either price: the caller must hear which one they agree to
    filling = Passage("Tooth-coloured resin filling: 100,000 won per tooth.", 0.5, {"item_id": 21, "heading": "Prices"})
    scaling = Passage("Scaling (professional cleaning): about 15,000 won.", 0.45, {"item_id": 22, "heading": "Prices"})
    retriever = GateRetriever(filling, scaling, probability=0.4, runner_up=0.3)
    call = await conversation(FakeSTT("What's a cleaning gonna run me?", "No.", "Yes."), retriever, turns=3)
    assert call.ai_texts()[1:] == [
        "Just to check, is it about prices: Tooth-coloured resin filling?",
        "Or is it about prices: Scaling (professional cleaning)?",
        scaling.text,
    ]
    assert filling.text not in " ".join(call.heard())


@pytest.mark.parametrize(
    "text, subject",
    [
        ("Zirconia crown: 600,000 won per tooth. Gold crown: 800,000 won per tooth.", "Zirconia crown"),
        ("Implant, including the abutment and the crown: 1,300,000 won per tooth.", "Implant"),
        ("Full brand identity (logo, colour palette and a guideline PDF): from 6,000,000 won.", "Full brand identity"),
        ("Dr. Minsu Park is our orthodontist and does all braces treatment.", "Dr. Minsu Park"),
        ("Junho Kim is our senior designer for brand identity.", "Junho Kim"),
        ("지르코니아 크라운은 치아 1개당 60만원입니다.", "지르코니아 크라운"),
        ("박민수 원장은 교정 담당 원장입니다.", "박민수 원장"),
        # no subject of its own: the heading alone stays the topic
        ("We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.", None),
        ("Take Line 2 to Gangnam Station, leave by exit 9.", None),
        ("Call us at 10:30 or 14:00: we answer then.", None),
    ],
)
def test_what_a_fact_is_about_is_read_from_how_the_owner_wrote_it(text, subject) -> None:
    from knowledge.retrieval.relevance import subject_of, topic_of

    assert subject_of(text) == subject
    alone = Passage(text, 0.5, {"item_id": 1, "heading": "Prices"})
    other = Passage("Gold inlay: 450,000 won per tooth.", 0.4, {"item_id": 2, "heading": "Prices"})
    assert topic_of(alone, [alone]) == ("heading", "Prices")  # a heading of its own names it
    assert topic_of(alone, [alone, other]) == ("heading", f"Prices: {subject}" if subject else "Prices")


@pytest.mark.parametrize(
    "passage, probability, confirm_at",
    [
        (IMPLANT, 0.2, 0.3),  # too unlikely to offer
        (IMPLANT, 0.15, CONFIRM_AT),  # below the default level (0.2)
        (LEARNED, 0.6, 0.3),  # learned from a call: no question or heading a caller would recognise
        (IMPLANT, 0.55, 0.0),  # turned off (AIPBX_CONFIRM_AT=0)
    ],
)
async def test_no_check_when_unlikely_unnameable_or_turned_off(passage, probability, confirm_at) -> None:
    retriever = GateRetriever(passage, probability=probability)
    call = await conversation(FakeSTT("How much is a crown?"), retriever, turns=1, confirm_at=confirm_at)
    assert call.ai_texts()[1] == NOT_SURE


async def test_with_operators_the_check_comes_before_a_person_is_asked_and_no_leads_to_one() -> None:
    desk = FakeDesk()
    async with Call(
        stt=FakeSTT("How much is a crown?", "No."), retriever=GateRetriever(IMPLANT, probability=0.55)
    ) as call:
        events = with_desk(call, desk)
        call.say()
        await call.until(lambda: len(call.ai_texts()) == 2 and call.state is State.LISTENING)
        assert call.ai_texts()[1] == ASKED_IMPLANT and not published(events, "hitl.requested")
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        request = published(events, "hitl.requested")[0]
        assert (request["question"], request["reason"]) == ("How much is a crown?", LOW_CONFIDENCE)
        desk.push(request["request_id"], {"kind": "away"})
        await call.until(lambda: len(call.ai_texts()) == 3 and call.state is State.LISTENING)
        assert call.ai_texts()[2] == MESSAGES["en"]["away"].format(owner=OWNER)


async def test_a_caller_asking_for_a_person_is_not_asked_to_confirm_a_passage() -> None:
    desk = FakeDesk()
    stt = FakeSTT("Can I talk to a person about implants?")
    async with Call(stt=stt, retriever=GateRetriever(IMPLANT, probability=0.55)) as call:
        events = with_desk(call, desk)
        call.say()
        await call.until(lambda: published(events, "hitl.requested"))
        assert published(events, "hitl.requested")[0]["reason"] == ASKED_FOR_PERSON
        assert ASKED_IMPLANT not in call.ai_texts()


@pytest.mark.parametrize(
    "said, lang, verdict, rest",
    [
        ("Yes.", "en", True, ""),
        ("Um, yeah, that one.", "en", True, "that one."),
        ("Mm-hmm.", "en", True, ""),
        ("No, I meant the price of crowns.", "en", False, "I meant the price of crowns."),
        ("Not really, how late are you open?", "en", False, "how late are you open?"),
        ("Nowhere to park?", "en", None, "Nowhere to park?"),
        ("I am calling about parking.", "en", None, "I am calling about parking."),
        ("네.", "ko", True, ""),
        ("음, 네 맞아요", "ko", True, "맞아요"),
        ("아니요, 주차 요금이요", "ko", False, "주차 요금이요"),
        ("예약하고 싶어요", "ko", None, "예약하고 싶어요"),  # 예약 (booking) is not 예 (yes)
        ("응급 진료 되나요?", "ko", None, "응급 진료 되나요?"),  # 응급 (emergency) is not 응
        ("아니면 토요일은요?", "ko", None, "아니면 토요일은요?"),  # 아니면 (or else) is not 아니 (no)
    ],
)
def test_what_counts_as_yes_and_no(said, lang, verdict, rest) -> None:
    assert reply_to_offer(said, lang) == (verdict, rest)


def test_the_korean_check_quotes_the_owners_question() -> None:
    passage = Passage("임플란트는 120만 원입니다.", 0.5, {"question": "임플란트 가격이 얼마인가요?"})
    offer = offer_for("임플란트 얼마예요", Judgement(None, 0.5, [(passage, 0.5, {})]), "ko")
    assert offer is not None and offer.text == "확인차 여쭙니다. 임플란트 가격이 얼마인가요, 이 질문이신가요?"
    assert offer_for("x", Judgement(passage, 0.9, [(passage, 0.9, {})]), "ko") is None  # answered, no check


async def test_a_yes_said_over_the_check_answers_it_instead_of_passing_for_a_backchannel() -> None:
    from ariapp.conversation.machine import Ev
    from tests.unit.test_conversation_orchestrator import speech

    def check_played(frames: int) -> bool:
        handle = call.speaker.handle("Just to check,")  # the check's first clause
        return handle is not None and handle.frames_played >= frames

    stt = FakeSTT("What do you charge for an implant?", "Yes.")
    async with Call(stt=stt, retriever=GateRetriever(IMPLANT, probability=0.55)) as call:
        call.hold = lambda: check_played(3)
        call.say()
        await call.until(lambda: call.hold() and call.state is State.SPEAKING)
        # when the caller says "yes" before the check has finished
        call.orchestrator.post(Ev.CALLER_ONSET)
        await call.until(lambda: call.state is State.PAUSED)
        call.hold = lambda: False
        call.say(speech(0.4))
        await call.until(lambda: len(call.ai_texts()) == 3 and call.state is State.LISTENING)
    # then the check stopped where it was and the owner's answer followed
    assert call.ai_texts()[2] == IMPLANT.text
    assert call.orchestrator.turns[2].interrupted


async def test_a_yes_with_a_question_of_its_own_is_judged_again_not_answered_with_the_passage() -> None:
    # "Yes, and how much is it after two hours?": the parking passage does not say; the gate decides again
    retriever = GateRetriever(PARKING, probability=0.4)
    stt = FakeSTT("Where can I leave my car?", "Yes, and how much is it after two hours?")
    call = await conversation(stt, retriever, turns=2)
    assert retriever.queries[-1] == ("201", "and how much is it after two hours?")
    assert PARKING.text not in call.ai_texts()
