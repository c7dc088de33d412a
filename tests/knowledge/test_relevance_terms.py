"""The text rules of the relevance gate: key words, answer types, weekdays (Korean and English)."""

from __future__ import annotations

import pytest

from knowledge.retrieval import terms


def test_key_terms_drop_the_padding_of_a_phone_question_and_stem_the_rest() -> None:
    assert terms.key_terms("Hi, um, I was wondering if you could tell me whether you see kids?") == ["kid"]
    assert terms.key_terms("How much do the ceramic braces cost?") == ["ceramic", "brace"]
    assert terms.key_terms("주차는 어디에 하면 돼요?") == ["주차", "하면"]


def test_answer_types_of_questions_and_what_passages_state() -> None:
    assert terms.answer_types("How much is a crown?") == {"price"}
    assert terms.answer_types("임플란트 가격이 얼마예요?") == {"price"}
    assert terms.answer_types("Where is the clinic?") == {"place"}
    assert "price" in terms.passage_types("A zirconia crown is 450,000 won.")
    assert "price" in terms.passage_types("스케일링은 1만 5천 원입니다.")
    assert "price" not in terms.passage_types("We are open Monday to Friday.")
    assert "phone" in terms.passage_types("Call reception at 02-555-0199.")


def test_weekdays_named_or_spanned() -> None:
    assert terms.weekdays("Open Monday to Thursday") == {"monday", "tuesday", "wednesday", "thursday"}
    assert terms.weekdays("평일 오전 9시부터") == {"monday", "tuesday", "wednesday", "thursday", "friday"}
    assert terms.weekdays("토요일과 일요일은 휴무") == {"saturday", "sunday"}
    assert terms.weekdays("closed at weekends") == {"saturday", "sunday"}


@pytest.mark.parametrize(
    ("question", "what_is_asked"),
    [
        ("Hi, this is Alex from Acme. When is the team meeting?", "When is the team meeting?"),
        ("Hi Jiyoung, it's Alex again. Are you open at the weekend?", "Are you open at the weekend?"),
        ("Hello. My name is Kim Minsu. Do you take Kakao Pay?", "Do you take Kakao Pay?"),
        ("안녕하세요, 저는 에이스의 알렉스입니다. 주차 되나요?", "주차 되나요?"),
        ("It's about my bill. How much do I owe?", "It's about my bill. How much do I owe?"),  # no name: content
        ("This is the parking question: where?", "This is the parking question: where?"),
        ("Hi.", "Hi."),  # nothing else: kept whole
    ],
)
def test_what_is_asked_leaves_out_the_callers_greeting_and_introduction(question: str, what_is_asked: str) -> None:
    assert terms.asked(question) == what_is_asked
