"""What the voice is given to read: numbers, prices, phone numbers, Korean numerals and names."""

from __future__ import annotations

import pytest

from ariapp.conversation.spoken import spoken


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Call us at 555-0199.", "Call us at five five five, zero one nine nine."),
        ("Call 02-555-0199 now", "Call zero two, five five five, zero one nine nine now"),
        ("Call (02) 555 0199.", "Call zero two, five five five, zero one nine nine."),
        ("+82 10 1234 5678", "plus eight two, one zero, one two three four, five six seven eight"),
        ("A crown costs $1,200.", "A crown costs one thousand two hundred dollars."),
        ("It is $85.50, or $1.", "It is eighty five dollars and fifty cents, or one dollar."),
        ("Scaling is 50,000 won.", "Scaling is fifty thousand won."),
        ("Scaling is ₩50,000.", "Scaling is fifty thousand won."),
        ("We have 1,500 patients.", "We have one thousand five hundred patients."),
    ],
)
def test_english_numbers_are_said_as_a_listener_needs_them(text: str, said: str) -> None:
    assert spoken(text, "en-US") == said


@pytest.mark.parametrize(
    "text",
    [
        "We open at 9:30 a.m. and close at 6 p.m.",  # the voice reads times right
        "Booked on 2026-12-03.",  # a date is not a phone number
        "Ages 3 5 7, version 1.2.3, 10.5 km, room 301.",
        "Central Park is two minutes away; ask reception.",  # English names are left alone
    ],
)
def test_what_the_voice_already_reads_right_is_left_alone(text: str) -> None:
    assert spoken(text, "en-US") == text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # not heard as "G and"; the title in full, or the voice pauses after its full stop
        ("Dr. Jiyoung Lee is the director.", "Doctor Jee Young Lee is the director."),
        ("Dr. Minsu Park is our orthodontist.", "Doctor Min Su Park is our orthodontist."),
        ("Ask Ms. Smith or Mr. Kim.", "Ask Miz Smith or Mister Kim."),
        ("Ask for Seoyeon Kim.", "Ask for Suh Yun Kim."),
    ],
)
def test_korean_names_beside_a_title_or_family_name_are_respelled_syllable_by_syllable(text: str, said: str) -> None:
    assert spoken(text, "en-US") == said


def test_the_callees_own_name_is_respelled_wherever_it_stands() -> None:
    assert spoken("Jiyoung will call you back.", "en-US", ["Jiyoung Lee"]) == "Jee Young will call you back."
    assert spoken("Jiyoung will call you back.", "en-US") == "Jiyoung will call you back."  # unknown: left alone


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("진료는 오전 9:30부터 오후 6시까지입니다.", "진료는 오전 아홉 시 삼십 분부터 오후 여섯 시까지입니다."),
        ("12시 5분에, 12:05에", "열두 시 오분에, 열두 시 오 분에"),  # hours native, minutes Sino-Korean
        ("2명까지, 3시간, 20살 이상, 21개", "두 명까지, 세 시간, 스무 살 이상, 스물한 개"),
        ("스케일링은 50,000원입니다.", "스케일링은 오만원입니다."),
        ("가격은 ₩15,000입니다", "가격은 만 오천 원입니다"),
        ("2026년 12월 3일, 3층, 1번 출구", "이천이십육년 십이월 삼일, 삼층, 일번 출구"),
        ("전화번호는 010-1234-5678입니다.", "전화번호는 공일공, 일이삼사, 오육칠팔입니다."),
        ("3.5배", "삼 점 오배"),
        ("10개월, 5달러, 3달", "십개월, 오달러, 세 달"),  # months and dollars are counted in Sino-Korean
    ],
)
def test_korean_numbers_take_native_or_sino_korean_numerals_by_what_they_count(text: str, said: str) -> None:
    assert spoken(text, "ko-KR") == said


@pytest.mark.parametrize("text", ["", "ok.", "네, 알겠습니다."])
def test_text_without_numbers_or_names_is_unchanged(text: str) -> None:
    assert spoken(text, "en-US") == text and spoken(text, "ko-KR") == text
