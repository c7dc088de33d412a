"""A word heard as another that sounds like it: the question is offered back respelled with the
knowledge's word ("Which four are you on?" -> is it about accessibility?), never answered outright.

Whole conversations with the fake providers of test_conversation_orchestrator, and the respelling
itself (knowledge.retrieval.sounds) on espeak-ng's phonemes, as calls use it.
"""

from __future__ import annotations

from knowledge.retrieval.sounds import alike, respellings, sounds
from tests.unit.test_conversation_confirm import PARKING, conversation
from tests.unit.test_conversation_orchestrator import FakeSTT
from tests.unit.test_conversation_relisten import FLOOR, NOT_SURE, PAYMENT, WordRetriever
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

ASKED_FLOOR = "Just to check, is it about accessibility?"
LIFT = "There is a lift up to our floor, next to the pharmacy."


def test_a_word_heard_as_another_is_put_back_with_the_knowledges_word_that_sounds_like_it() -> None:
    assert respellings("Which four are you on?", [FLOOR.text])[0][1] == "Which floor are you on?"
    assert "Is there a lift up to your floor?" in [
        t for _, t in respellings("Is there a list up to your floor?", [LIFT])
    ]
    # two words for one name, written as the knowledge writes it
    assert respellings("Do you take sense and pay?", [PAYMENT.text])[0][1] == "Do you take Samsung Pay?"
    # Korean is compared letter by letter (jamo): it is written as it sounds
    (score, text), *_ = respellings("엘레베이터 있어요?", ["엘리베이터는 입구 옆에 있습니다."])
    assert text.startswith("엘리베이터") and score >= 0.7


def test_nothing_is_respelled_when_the_knowledge_has_every_word_or_nothing_sounds_alike() -> None:
    assert respellings("Where do you park?", [PARKING.text]) == []  # "park" is the passage's word
    assert respellings("Do you do Botox?", [FLOOR.text, PARKING.text, PAYMENT.text]) == []
    assert respellings("Can I talk to a person?", [PARKING.text]) == []


def test_sounds_are_closer_within_a_kind() -> None:
    four, floor, door = sounds("four"), sounds("floor"), sounds("door")
    assert alike(four, floor) > alike(four, sounds("parking")) and alike(four, four) == 1.0
    assert alike(sounds("lift"), sounds("list")) > alike(sounds("lift"), sounds("lamp"))
    assert 0 < alike(four, door) < 1


async def test_a_misheard_word_is_checked_with_the_caller_respelled_and_answered_when_they_agree() -> None:
    # given the recogniser hears "Which four are you on?", which nothing answers and nothing comes near
    stt = FakeSTT("Which four are you on?", "Yes.")
    retriever = WordRetriever(FLOOR, PARKING, near=0.1)
    call = await conversation(stt, retriever, turns=2)
    # then the AI checks the passage that answers the question respelled, and says it when the caller agrees
    assert call.ai_texts()[1:] == [ASKED_FLOOR, FLOOR.text]
    assert [q for _, q in retriever.queries] == ["Which four are you on?", "Which floor are you on?"]


async def test_a_caller_who_says_no_to_a_respelling_never_hears_the_passage() -> None:
    call = await conversation(FakeSTT("Which four are you on?", "No."), WordRetriever(FLOOR, PARKING, near=0.1), 2)
    assert call.ai_texts()[1:] == [ASKED_FLOOR, NOT_SURE]
    assert FLOOR.text not in " ".join(call.heard())


async def test_no_respelling_with_the_check_turned_off() -> None:
    retriever = WordRetriever(FLOOR, PARKING, near=0.1)
    call = await conversation(FakeSTT("Which four are you on?"), retriever, turns=1, confirm_at=0)
    assert call.ai_texts()[-1] == NOT_SURE and len(retriever.queries) == 1
