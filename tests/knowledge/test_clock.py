"""Times of the clock: what a caller asks about, and which spans of the day a passage states."""

from __future__ import annotations

import pytest

from knowledge.retrieval import clock
from knowledge.retrieval.terms import restated


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@pytest.mark.parametrize(
    ("question", "times"),
    [
        ("Can I come in at 5:45 on a Friday?", {"5:45", "17:45"}),
        ("Is anyone there at 8 pm?", {"20:00"}),
        ("Can I come at 8 PM?", {"20:00"}),
        ("Can I come in at 6 Friday evening?", {"18:00"}),
        ("Could I come in around eight on a Thursday night?", {"20:00"}),
        ("Can I come in at 11 on a Saturday morning?", {"11:00"}),
        ("If I call around one-thirty, will anybody pick up?", {"1:30", "13:30"}),
        ("Could we come for dinner around eight thirty?", {"8:30", "20:30"}),
        ("Can I come in around six forty-five tonight?", {"18:45"}),
        ("Are you open at 9 a.m.?", {"9:00"}),
        ("Is someone in at noon?", {"12:00"}),
        ("Is anyone there at eight o'clock?", {"8:00", "20:00"}),
        ("금요일 오후 5시 반에 가도 돼요?", {"17:30"}),
        ("수요일 1시 반쯤 전화하면 받으세요?", {"1:30", "13:30"}),
        ("저녁 여덟 시에 가도 돼요?", {"20:00"}),
        ("오전 10시 20분에 방문해도 되나요?", {"10:20"}),
    ],
)
def test_the_time_a_caller_asks_about(question: str, times: set[str]) -> None:
    assert clock.asked_times(question) == {hm(t) for t in times}


@pytest.mark.parametrize(
    "question",
    [
        "My daughter's four, can she be seen there?",  # an age
        "I'm gonna be like twenty minutes late, is that okay?",
        "How much is parking after 2 hours?",
        "Can we book a table for 6 people?",
        "Is it on the 3rd floor?",
        "예약 24시간 전까지 취소하면 돼요?",  # a span of hours, not a time
        "주차는 2시간까지 무료인가요?",
        "What time do you open?",  # asks for a time; names none
        "Are you at 12 Seongsui-ro?",  # a street number
        "Is the clinic at 3 Gangnam Station?",
        "Is it the building at 7-gil?",
    ],
)
def test_numbers_that_are_not_a_time_of_the_day(question: str) -> None:
    assert clock.asked_times(question) == set()


def test_a_time_said_in_words_is_read_after_the_owners_words() -> None:
    assert clock.asked_times(restated("Can I still come at quarter to six?")) == {hm("5:45"), hm("17:45")}


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.", [("9:30", "18:30")]),
        ("Monday to Friday from 1 p.m. to 2 p.m. the clinic is closed.", [("13:00", "14:00")]),
        (
            "Open 10 a.m. to 7 p.m., with a lunch break from 12:30 to 1:30 p.m.",
            [("10:00", "19:00"), ("12:30", "13:30")],
        ),
        ("We accept parcels on weekdays between 10 a.m. and 6 p.m.", [("10:00", "18:00")]),
        (
            "On Thursdays we see patients until 9 p.m.; the morning opening is 9:30 a.m.",
            [("9:30", "21:00")],
        ),
        ("Kitchen hours 11:30–22:00.", [("11:30", "22:00")]),
        ("월요일부터 금요일까지 오후 1시부터 2시까지는 진료를 하지 않습니다.", [("13:00", "14:00")]),
        ("평일 오전 9시 30분부터 오후 6시 30분까지 진료합니다.", [("9:30", "18:30")]),
        ("The last patient is checked in at 6 p.m.", []),  # a moment, not a span
        ("The courier comes at 9 a.m. and 2 p.m.", []),  # two moments
        ("Please call at least 24 hours ahead.", []),
        ("예약 시간 24시간 전까지 전화로 취소해 주세요.", []),
    ],
)
def test_the_spans_of_the_day_a_passage_states(text: str, spans: list[tuple[str, str]]) -> None:
    assert clock.hours_spans(text) == [(hm(a), hm(b)) for a, b in spans]


def test_a_passage_about_the_hours_is_told_from_one_that_only_states_times() -> None:
    assert clock.states_hours("We are open Tuesday to Sunday from 11:30 a.m. to 10 p.m.")
    assert clock.states_hours("From 3 p.m. to 5 p.m. the kitchen closes and we don't seat guests.")
    assert clock.states_hours("화요일부터 금요일까지 오후 3시부터 5시까지는 손님을 받지 않습니다.")
    assert not clock.states_hours("We deliver through the Baemin app from 11:30 a.m. to 8:30 p.m.")
    assert not clock.states_hours("Delivery hours: 11 a.m. to 9 p.m. through the app.")
    assert clock.states_hours("Office hours: 9 a.m. to 6 p.m.")
    assert clock.states_closing("Monday to Friday from 1 p.m. to 2 p.m. the clinic is closed.")
    assert clock.states_closing("평일 오후 3시부터 5시까지는 쉬는 시간입니다.")
    assert not clock.states_closing("We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.")
    assert not clock.states_hours("택배는 평일 오전 10시부터 오후 6시까지 받습니다. 착불 택배는 받지 않습니다.")
