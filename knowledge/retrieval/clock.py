"""Times of the clock: the one a caller asks about, and the spans of the day a passage states.

"Is anyone there at half past one on a Wednesday?" is answered by the lunch break ("Monday to Friday
from 1 p.m. to 2 p.m. the clinic is closed"), not by the opening hours the models put first
("… from 9:30 a.m. to 6:30 p.m."): both spans hold 1:30 p.m., and the narrower is the exception the
caller needs to hear. Neither embedding model reads a time as a point of the day, so the relevance
gate asks this module (:func:`relevance.judge <knowledge.retrieval.relevance.judge>`).

Times are minutes after midnight. A time said without a.m. or p.m. ("at 4", "네 시") may be either,
unless the part of the day says which ("on a Saturday morning", "저녁").
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["asked_times", "hours_spans", "states_closing", "states_hours"]

_NUMBERS_EN: Final = {
    word: n for n, word in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split()) if n
}
_MINUTES_EN: Final = {"fifteen": 15, "thirty": 30, "forty five": 45, "o'clock": 0}
_HOUR_EN: Final = r"1[0-2]|0?[1-9]|" + "|".join(_NUMBERS_EN)
_MERIDIEM: Final = r"a\.?\s?m\.?|p\.?\s?m\.?"

#: A time in a question: "5:45", "6 pm", "eight o'clock", "one-thirty", or an hour after a word that
#: makes it one ("at 4", "around eight"; not "four years", "my daughter's four").
_ASKED_EN: Final = re.compile(
    rf"\b(?P<h>\d{{1,2}}):(?P<m>\d{{2}})\s*(?P<ap>{_MERIDIEM})?"
    rf"|\b(?P<h2>{_HOUR_EN})(?:[\s-](?P<m2>fifteen|thirty|forty[\s-]five|o'clock))?\s*(?P<ap2>{_MERIDIEM})"
    rf"|\b(?P<h3>{_HOUR_EN})[\s-](?P<m3>fifteen|thirty|forty[\s-]five|o'clock)\b"
    rf"|\b(?:at|around|about|by|after|before|until|till|til)\s+(?:like\s+|maybe\s+|about\s+)?"
    rf"(?P<h4>{_HOUR_EN})(?:[\s-](?P<m4>fifteen|thirty|forty[\s-]five|o'clock))?\b"
    r"(?!\s*(?:years?|months?|weeks?|days?|hours?|minutes?|mins?|people|persons?|guests?|of us|won|dollars?"
    r"|percent|%|floor|st|nd|rd|th|:|a\.?\s?m\b|p\.?\s?m\b))"
    r"|\b(?P<noon>noon|midday)\b",
    re.I,
)
#: A name after a number said after "at" ("at 12 Seongsui-ro", "at 3 Gangnam Station", "at 7-gil"): not
#: a time.
_NAMED_AFTER: Final = re.compile(r"\s+(?!(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day)[A-Z]|-(?:ro|gil|dong|ga)\b")
_NUMBERS_KO: Final = {
    "열두": 12,
    "열한": 11,
    "열": 10,
    "아홉": 9,
    "여덟": 8,
    "일곱": 7,
    "여섯": 6,
    "다섯": 5,
    "네": 4,
    "세": 3,
    "두": 2,
    "한": 1,
}
#: "오후 5시 반", "세 시", "1시 30분"; not "24시간" (a span of hours).
_TIME_KO: Final = re.compile(
    r"(?P<part>오전|오후|아침|저녁|밤|낮|새벽)?\s*"
    r"(?P<h>\d{1,2}|" + "|".join(_NUMBERS_KO) + r")\s*시(?!간)\s*(?:(?P<m>\d{1,2})\s*분|(?P<half>반))?"
)
_MORNING: Final = re.compile(r"\bmornings?\b|오전|아침|새벽", re.I)
_LATER: Final = re.compile(r"\b(?:afternoons?|evenings?|nights?|tonight)\b|오후|저녁|밤", re.I)


def asked_times(question: str) -> set[int]:
    """The times of the day ``question`` asks about (each reading of one said without a.m. or p.m.)."""
    found: set[int] = set()
    morning, later = bool(_MORNING.search(question)), bool(_LATER.search(question))
    for match in _ASKED_EN.finditer(question):
        if match["noon"]:
            found.add(12 * 60)
            continue
        if match["h4"] and _NAMED_AFTER.match(question, match.end()):
            continue  # "Are you at 12 Seongsui-ro?": a street number
        hour_text = next(match[g] for g in ("h", "h2", "h3", "h4") if match[g])
        hour = int(_NUMBERS_EN.get(hour_text.lower(), hour_text))
        said = (match["m"] or match["m2"] or match["m3"] or match["m4"] or "").lower().replace("-", " ")
        minutes = int(said) if said.isdigit() else _MINUTES_EN.get(said, 0)
        meridiem = (match["ap"] or match["ap2"] or "").lower()
        found |= _readings(hour, minutes, meridiem[:1] if meridiem else "", morning, later)
    for match in _TIME_KO.finditer(question):
        hour = int(_NUMBERS_KO.get(match["h"], match["h"]) if not match["h"].isdigit() else match["h"])
        minutes = 30 if match["half"] else int(match["m"] or 0)
        part = match["part"] or ""
        meridiem = "a" if part in ("오전", "아침", "새벽") else ("p" if part in ("오후", "저녁", "밤") else "")
        if part == "낮":
            meridiem = "p" if hour < 6 or hour == 12 else "a"
        found |= _readings(hour, minutes, meridiem, morning and not meridiem, later and not meridiem)
    return {t for t in found if 0 <= t < 24 * 60}


def _readings(hour: int, minutes: int, meridiem: str, morning: bool, later: bool) -> set[int]:
    if hour > 12 or minutes >= 60:
        return {hour * 60 + minutes} if hour < 24 and minutes < 60 else set()
    am = (hour % 12) * 60 + minutes
    pm = am + 12 * 60
    if meridiem == "a" or morning and not later:
        return {am}
    if meridiem == "p" or later and not morning:
        return {pm}
    return {am, pm}


#: A time a passage states: "9:30 a.m.", "6 p.m.", "18:00", "noon"; "오전 9시 30분", "2시".
_STATED: Final = re.compile(
    rf"\b(?P<h>\d{{1,2}})(?::(?P<m>\d{{2}}))?\s*(?P<ap>{_MERIDIEM})(?![a-z])"
    r"|\b(?P<h2>\d{1,2}):(?P<m2>\d{2})\b"
    r"|\b(?P<noon>noon|midday)\b"
    r"|(?P<part>오전|오후|아침|저녁|밤|낮)?\s*(?P<h3>\d{1,2})\s*시(?!간)\s*(?:(?P<m3>\d{1,2})\s*분|(?P<half>반))?",
    re.I,
)
#: What joins two times into a span: "from A to B", "A-B", "A부터 B까지", "A~B" ("between A and B":
#: :func:`_between`; "at 9 a.m. and 2 p.m." are two moments).
_JOIN: Final = re.compile(r"^\s*(?:to|until|till|through|-|–|~|부터|에서)\s*$", re.I)
#: What makes a lone time the end of a span that starts at the passage's opening: "until 9 p.m.", "9시까지".
_UNTIL_BEFORE: Final = re.compile(r"\b(?:until|till|to)\s*$", re.I)
_UNTIL_AFTER: Final = re.compile(r"^\s*까지")
#: A passage about when the business is open or closed (not when it delivers or serves a set menu, nor
#: "Delivery hours").
_HOURS_WORDS: Final = re.compile(
    r"\bopen(?:s|ing)?\b|\bclose[sd]?\b|\bclosing\b|\b(?:opening|office|business|working|clinic|surgery) hours\b|"
    r"\bsee (?:patients|clients|guests)\b|"
    r"\bseat\b|\banswer(?:ed)?\b|영업|진료|휴무|휴진|쉽니다|쉬는|손님을\s*받|전화(?:도|를)?\s*받|문을|근무",
    re.I,
)


#: A passage about when the business is closed within its hours: a lunch break, a break time.
_CLOSING_WORDS: Final = re.compile(
    r"\bclosed\b|\bcloses\b|\bbreak\b|\bnot answered\b|\bdon't (?:seat|answer)|\bdo not (?:seat|answer)|"
    r"휴게|쉬는|쉽니다|하지\s*않|받지\s*않|휴진",
    re.I,
)


def states_closing(text: str) -> bool:
    """Whether ``text`` says when the business is closed (the exceptions within its hours)."""
    return bool(_CLOSING_WORDS.search(text))


def states_hours(text: str) -> bool:
    """Whether ``text`` is about when the business is open or closed (or answers the phone)."""
    return bool(_HOURS_WORDS.search(text))


def hours_spans(text: str) -> list[tuple[int, int]]:
    """The spans of the day ``text`` states, as (start, end) minutes: "from 9:30 a.m. to 6:30 p.m.",
    "1 p.m. to 2 p.m.", "오후 1시부터 2시까지", and "until 9 p.m." from the earliest time it states
    otherwise (the opening: "On Thursdays we see patients until 9 p.m.; the morning opening is 9:30 a.m.")."""
    times = [(match.start(), match.end(), *_stated(match)) for match in _STATED.finditer(text)]
    spans: list[tuple[int, int]] = []
    used: set[int] = set()
    for i in range(len(times) - 1):
        (start_a, end_a, start, a_meridiem), (start_b, _, finish, b_meridiem) = times[i], times[i + 1]
        if i in used or not _JOIN.match(text[end_a:start_b]) and not _between(text, start_a, end_a, start_b):
            continue
        if not a_meridiem and b_meridiem == "p" and start < 12 * 60 and start + 12 * 60 <= finish:
            start += 12 * 60  # "1 to 2 p.m."
        if not b_meridiem and a_meridiem == "p" and finish < 12 * 60:
            finish += 12 * 60  # "오후 1시부터 2시까지"
        if not b_meridiem and finish <= start and finish + 12 * 60 > start:
            finish += 12 * 60  # "12:30 to 1:30"
        if finish > start:
            spans.append((start, finish))
            used |= {i, i + 1}
    for i, (begin, end, minutes, _) in enumerate(times):
        if i in used or not (_UNTIL_BEFORE.search(text[max(0, begin - 8) : begin]) or _UNTIL_AFTER.match(text[end:])):
            continue
        opening = [t[2] for j, t in enumerate(times) if j != i and t[2] < minutes]
        if opening:
            spans.append((min(opening), minutes))
    return spans


def _between(text: str, start_a: int, end_a: int, start_b: int) -> bool:
    """ "between A and B": "between" before A, "and" between them."""
    return bool(re.search(r"\bbetween\s*$", text[max(0, start_a - 10) : start_a], re.I)) and bool(
        re.match(r"^\s*and\s*$", text[end_a:start_b], re.I)
    )


def _stated(match: re.Match[str]) -> tuple[int, str]:
    """(minutes, "a" / "p" / "") of one stated time."""
    if match["noon"]:
        return 12 * 60, "p"
    if match["h"]:
        hour, minutes, meridiem = int(match["h"]), int(match["m"] or 0), match["ap"].lower()[:1]
    elif match["h2"]:
        hour, minutes, meridiem = int(match["h2"]), int(match["m2"]), ""
    else:
        hour, minutes = int(match["h3"]), 30 if match["half"] else int(match["m3"] or 0)
        part = match["part"] or ""
        meridiem = "a" if part in ("오전", "아침") else ("p" if part in ("오후", "저녁", "밤", "낮") else "")
    if meridiem == "p" and hour < 12:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    if hour > 12 and not meridiem:
        meridiem = "p"
    return hour * 60 + minutes, meridiem
