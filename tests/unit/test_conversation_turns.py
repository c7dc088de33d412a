"""The text half of end-of-turn: which recognised utterances stop in the middle of a thought."""

from __future__ import annotations

import pytest

from ariapp.conversation.turns import INCOMPLETE_BELOW, backchannel, should_wait, unfinished


@pytest.mark.parametrize(
    "text",
    [
        "Could you tell me",
        "Could you tell me,",
        "I wanted to ask about the",
        "Um, so I was wondering if",
        "My appointment is on Tuesday and",
        "So...",
        "so i was wondering.",
        "I'd like to ask about the.",
        # a fragment said with a question's tune, heard with a question mark
        "Are you open on?",
        "Is their parking for?",
        "How long does it usually take to?",
        "how much would it be for?",
        "Do you have any dishes that are?",
        "Could you tell me?",
        # a verb with its subject and no object, an auxiliary with no verb, two prepositions, a possessive
        "Do you take?",
        "What do you charge for corkage if we bring?",
        "Is it possible to bring?",
        "What kind of insurance do you?",
        "So for the M plan, does the price?",
        "Who should I talk to about?",
        "What are your?",
        # a filler the recogniser heard as a question ("..., uh" -> "..., huh?")
        "Could you tell me, huh?",
        "Do you see children who are, huh?",
        "Could you tell me? Up.",
        "Do you take, oh?",
        "Do you take? No.",
    ],
)
def test_english_thoughts_left_open(text: str) -> None:
    assert unfinished(text, "en-US")


@pytest.mark.parametrize(
    "text",
    [
        "When do you close on Saturdays?",
        "How much is a crown",
        "Thanks.",
        "I'd like to book a cleaning.",
        "Yes",
        "",
        "What is it for?",
        "Where are you from?",
        "Who should I talk to?",
        "Which clinic is that in?",
        "What do you take?",
        "Which cards do you accept?",
        "How many patients do you take?",
        "Is there anything I need to bring?",
        "How do I book?",
        "Will that work?",
        "Who does the cleaning?",
        "How much is that?",  # not the caller's first words: it points back at our answer
        "Huh?",  # a caller who did not hear us: answered at once
        "What's up?",
        "Is the lift going up?",
        "Is it open on Sundays? No.",
        "Do you take cards? Oh.",
        "Can I see Dr. Lee?",  # a short name after a title is not a lone syllable
        "Is it with Dr. Oh?",
    ],
)
def test_english_thoughts_finished(text: str) -> None:
    assert not unfinished(text, "en-US")


@pytest.mark.parametrize("text", ["What's that?", "how much is that?", "Is there a break in that?"])
def test_a_first_question_pointing_back_at_nothing_is_left_open(text: str) -> None:
    # whisper completes "What's the" [pause] as "What's that?"; as the call's first words it refers
    # to nothing, so the caller is given a moment; later it asks about what we just said
    assert unfinished(text, "en-US", first=True)
    assert should_wait(text, "en-US", 0.99, first=True)
    assert not unfinished(text, "en-US")
    assert not unfinished("And the ceramic inlay. What would that be?", "en-US", first=True)


@pytest.mark.parametrize("text", ["예약을 했는데", "주차를 하려고", "그리고", "혹시 주말에도", "음"])
def test_korean_thoughts_left_open(text: str) -> None:
    assert unfinished(text, "ko-KR")


@pytest.mark.parametrize("text", ["토요일에 문 여나요?", "가격이 얼마예요", "네", "예약하고 싶습니다."])
def test_korean_thoughts_finished(text: str) -> None:
    assert not unfinished(text, "ko-KR")


@pytest.mark.parametrize(
    "text",
    [
        "MM",
        "Mm-m. Mm.",
        "Mhm.",
        "M-h-h",
        "Uh-huh.",
        "uh",
        "Hmm.",
        "Okay.",
        "네",
        "",
        "Mm, okay.",
        "All right.",
        "Amen.",
        "N-m-",  # "Mm-hmm." as tiny.en spelt it over a reply
    ],
)
def test_hums_and_acknowledgements_are_backchannels(text: str) -> None:
    assert backchannel(text)


@pytest.mark.parametrize(
    "text", ["in a month.", "Mm, no, the other one.", "Monday?", "What about Sunday?", "Amen, stop.", "N.", "No."]
)
def test_words_are_not_backchannels(text: str) -> None:
    assert not backchannel(text)


def test_the_turn_model_holds_a_finished_sounding_sentence_only_when_it_is_sure() -> None:
    # the words alone: "The price is fine." (the recogniser dropped the "and") is finished
    assert not should_wait("The price is fine.", "en-US", None)
    # the model sure that the thought goes on: wait; merely unsure: the words decide
    assert should_wait("The price is fine.", "en-US", INCOMPLETE_BELOW / 2)
    assert not should_wait("The price is fine.", "en-US", 0.3)
    # an open thought waits whatever the model says
    assert should_wait("Could you tell me,", "en-US", 0.99)


@pytest.mark.parametrize(
    "text",
    [
        "Hi, this is Alex from Acme.",
        "Hello?",
        "Good morning.",
        "안녕하세요, 저는 에이스의 알렉스입니다.",
        # as a recogniser may write it: no full stop (the audio cut right after the name), a question
        # tune, a trailing comma, an initialism, a title, no "저는"; the phone's "hello"
        "Hi, this is Alex from Acme",
        "Hi, this is Alex from Acme?",
        "Hello, my name is Alex Kim,",
        "This is Alex from A.C.M.E.",
        "Hi, this is Dr. Park",
        "안녕하세요, 에이스의 알렉스입니다",
        "여보세요?",
    ],
)
def test_a_greeting_or_an_introduction_alone_waits_for_the_question(text: str) -> None:
    # the synthetic caller's full stop after "Acme." is a 0.3-0.5 s pause: the question comes after it
    # (answered alone, the introduction went to a person, then to voicemail over the question: CI)
    assert should_wait(text, "en-US", 0.99)


@pytest.mark.parametrize(
    "text", ["This is urgent.", "It's about my bill", "It's Sunday, are you open", "안녕하세요, 주차 돼요?"]
)
def test_a_statement_or_a_question_is_not_an_introduction(text: str) -> None:
    assert not should_wait(text, "en-US", 0.99)


@pytest.mark.parametrize("text", ["Hi, this is Alex from Acme. When is the meeting?", "Hi, when are you open?"])
def test_a_greeting_with_its_question_does_not_wait(text: str) -> None:
    assert not should_wait(text, "en-US", 0.99)


@pytest.mark.parametrize("text", ["I'm over 65.", "My son is seven.", "My son is 7, N.", "We're a family of four."])
def test_the_callers_situation_alone_waits_for_the_question(text: str) -> None:
    # "I'm over 65. [pause] Is my implant covered by insurance?" answered in two turns: the second
    # alone sounds like the insurance passage's question, and the first is lost
    assert should_wait(text, "en-US", 0.99)


@pytest.mark.parametrize(
    "text",
    [
        "I'm over 65, is my implant covered by insurance?",
        "My appointment is on Tuesday. Can I move it?",
        "I'd like to book a cleaning.",
        "I am a new patient and I would like to book a cleaning for next week please.",
    ],
)
def test_a_situation_with_its_question_or_a_request_does_not_wait(text: str) -> None:
    assert not should_wait(text, "en-US", 0.99)
