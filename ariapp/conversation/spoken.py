"""Text as it must be spoken to a phone listener: numbers, prices, times, phone numbers and names.

A voice reads what it is given. espeak's phonemizer (under Piper and espeak-ng) reads "555-0199" as
"five hundred fifty-five dash zero one nine nine", "$1,200" as "dollar one thousand two hundred", and
the Korean name "Jiyoung" as "jih-yung", which a listener hears as "G and". Korean adds native vs
Sino-Korean numerals: "3시 30분" is "세 시 삼십 분", never "삼 시". ``spoken`` rewrites a sentence into
words that every voice (offline or cloud) reads right; the transcript keeps the original text.

Rules, in order (each works on what the previous left):

* phone numbers (7-15 digits in 2-4 groups joined by ``-``, ``.`` or spaces): digit by digit, the
  groups apart ("five five five, zero one nine nine"; "공일공, 일이삼사, 오육칠팔");
* prices with a currency sign or unit: the amount in words, then the unit ("one thousand two
  hundred dollars"; "오만 원");
* Korean times and counted things: native numerals before 시, 명, 개, 살, 시간, 달 ("열 시 삼십 분",
  "두 명"), Sino-Korean numerals elsewhere;
* Korean given names written in English letters, next to a title, a Korean family name, or one of
  the ``names`` the caller may hear (the callee's): split into syllables and respelled the way an
  English voice says them ("Jiyoung" -> "Jee Young", heard as "G. Young", not "G and");
* English titles in full ("Dr." -> "Doctor"): a voice reads the abbreviation's full stop as the end
  of a sentence and pauses 0.3 s inside the name ("Dr. [pause] Jiyoung Lee").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from num2words import num2words

__all__ = ["spoken"]

# --- phone numbers ----------------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?<![A-Za-z0-9_+.,:/])(?:\+\d{1,3}[ -]?)?(?:\(\d{1,4}\)[ -]?)?\d{1,4}(?:[-. ]\d{2,4}){1,3}"
    r"(?![A-Za-z0-9_/]|[-.,:]\d)"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
_DIGITS = {
    "en": "zero one two three four five six seven eight nine".split(),
    "ko": "공 일 이 삼 사 오 육 칠 팔 구".split(),
}


def _phone(match: re.Match[str], lang: str) -> str:
    raw = match.group(0)
    digits = re.sub(r"\D", "", raw)
    if not 7 <= len(digits) <= 15 or _ISO_DATE.match(raw):
        return raw
    if " " in raw.strip() and "-" not in raw and "." not in raw and "(" not in raw and "+" not in raw:
        # Plain numbers written apart ("3 5 7") are not a phone number; "555 0199" is.
        if not all(len(g) >= 3 for g in raw.split()[1:]):
            return raw
    groups = [g for g in re.split(r"[-. ()]+", raw) if g]
    words = []
    for group in groups:
        sign = ("plus " if lang == "en" else "플러스 ") if group.startswith("+") else ""
        names = _DIGITS[lang]
        sep = " " if lang == "en" else ""
        words.append(sign + sep.join(names[int(d)] for d in group.lstrip("+")))
    return ", ".join(words)


# --- numbers ----------------------------------------------------------------------------------------
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _en_number(text: str) -> str:
    return num2words(_int(text)).replace(",", "").replace("-", " ")


def _ko_sino(value: int) -> str:
    return num2words(value, lang="ko")


_NATIVE_ONES = ["", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]
_NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔"]
_COUNTER_FORM = {"하나": "한", "둘": "두", "셋": "세", "넷": "네", "스물": "스무"}


def _ko_native(value: int) -> str:
    """Native Korean numeral in the form used before a counter (한, 두, 세, 스무, 스물한 ...)."""
    if not 1 <= value <= 99:
        return _ko_sino(value)
    tens, ones = divmod(value, 10)
    if ones:
        return _NATIVE_TENS[tens] + _COUNTER_FORM.get(_NATIVE_ONES[ones], _NATIVE_ONES[ones])
    return _COUNTER_FORM.get(_NATIVE_TENS[tens], _NATIVE_TENS[tens])


# --- prices -----------------------------------------------------------------------------------------
_SIGNS = {"$": "dollars", "€": "euros", "£": "pounds", "₩": "won"}
_EN_PRICE_SIGN = re.compile(rf"([$€£₩])\s?({_NUMBER})(?:\.(\d{{2}}))?(?!\d)")
_EN_PRICE_UNIT = re.compile(rf"(?<![\d.,])({_NUMBER})\s?(?:원|KRW\b|won\b)", re.IGNORECASE)
_SUBUNIT = {"dollars": "cents", "euros": "cents", "pounds": "pence"}


def _en_price(match: re.Match[str]) -> str:
    unit = _SIGNS[match.group(1)]
    amount = _int(match.group(2))
    words = f"{_en_number(match.group(2))} {unit[:-1] if amount == 1 and unit != 'won' else unit}"
    cents = match.group(3)
    if cents and int(cents) and unit in _SUBUNIT:
        words += f" and {_en_number(cents)} {_SUBUNIT[unit]}"
    return words


_KO_PRICE_SIGN = re.compile(rf"([$₩])\s?({_NUMBER})(?!\d)")


def _ko_price_sign(match: re.Match[str]) -> str:
    return f"{_ko_sino(_int(match.group(2)))} {'달러' if match.group(1) == '$' else '원'}"


# --- Korean numerals --------------------------------------------------------------------------------
_KO_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])")
# Counters that take native numerals (a count or an hour of the clock), longest first; 개월 and 달러 are Sino.
_KO_NATIVE = re.compile(rf"(?<![\d,.])({_NUMBER})\s?(시간|시|명|개(?!월)|살|달(?!러)|마리|잔|권|군데|분께)")
_KO_NUMBER = re.compile(rf"(?<![\d.])({_NUMBER})(?:\.(\d+))?")


def _ko_time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 24 or minute > 59:
        return match.group(0)
    words = f"{_ko_native(hour) if hour else '영'} 시"
    return f"{words} {_ko_sino(minute)} 분" if minute else words


def _ko_native_count(match: re.Match[str]) -> str:
    value = _int(match.group(1))
    return f"{_ko_native(value) if value else '영'} {match.group(2)}"


def _ko_number(match: re.Match[str]) -> str:
    words = _ko_sino(_int(match.group(1))) if _int(match.group(1)) else "영"
    if match.group(2):
        words += " 점 " + "".join(_DIGITS["ko"][int(d)] for d in match.group(2))
    return words


# --- Korean names in English letters ----------------------------------------------------------------
# Syllables of Korean given names as they are usually romanised, and how an English voice must be
# told to say them (only those it gets wrong are respelled).
_SYLLABLES = (
    "a ae ah an bin bo bok bom byung byeong chae chan chang cheol chul chun da dae dan do dong eun "
    "geon gi gil gu gun gyu ha hae han ho hoon hun hwa hwan hee hye hyo hyuk hyun hyeon hyung in "
    "ja jae jang je jeong ji jin jo joo joon jong ju jun jung ka kang ki kyu kyung kyeong mi min "
    "mo mun myung myeong na nam ra ran ri rin ro seo seok seon seong seul seung shin si sik so "
    "sol song soo sook su suk sun sung tae won woo woong ye yeon yeong yi yo yong yoon young yu "
    "yul yun"
).split()
_SYLLABLES_SET = frozenset(_SYLLABLES)
_SAY = {
    "ji": "jee",
    "mi": "mee",
    "ri": "ree",
    "gi": "ghee",
    "ki": "kee",
    "si": "shee",
    "yi": "yee",
    "seo": "suh",
    "seok": "suk",
    "seon": "sun",
    "seong": "sung",
    "jeong": "jung",
    "yeon": "yun",
    "yeong": "young",
    "hyeon": "hyun",
    "geon": "gun",
    "myeong": "myung",
    "byeong": "byung",
    "kyeong": "kyung",
    "cheol": "chul",
    "eun": "un",
    "seul": "sul",
    "je": "jeh",
    "ye": "yeh",
}
_FAMILY = frozenset(
    "kim lee yi park pak choi choe jung jeong kang cho jo yoon yun jang chang lim im han oh o seo "
    "shin sin kwon hwang ahn an song yoo yu hong jeon chun go ko moon mun yang son bae baek heo "
    "nam noh ryu yoo".split()
)
_TITLES = frozenset("dr dr. doctor mr mr. mrs mrs. ms ms. miss director manager".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*\.?")


@lru_cache(maxsize=4096)
def _syllables(word: str) -> tuple[str, ...] | None:
    """``word`` cut into known name syllables (fewest pieces), or None."""
    word = word.lower()
    best: list[tuple[str, ...] | None] = [()] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            head, piece, current = best[start], word[start:end], best[end]
            if head is not None and piece in _SYLLABLES_SET and (current is None or len(head) + 1 < len(current)):
                best[end] = (*head, piece)
    return best[len(word)]


def _respell(word: str) -> str | None:
    parts = _syllables(word.replace("-", ""))
    if parts is None or len(parts) < 2:
        return None
    said = [_SAY.get(p, p) for p in parts]
    return " ".join(s.capitalize() for s in said)  # a word each: the voice stresses every syllable


def _names(text: str, names: Iterable[str]) -> str:
    known = {n.lower() for name in names for n in re.findall(r"[A-Za-z]+", name)}
    tokens = list(_WORD.finditer(text))
    out, last = [], 0
    for i, token in enumerate(tokens):
        word = token.group(0).rstrip(".")
        if not word[:1].isupper() or word.lower() in _FAMILY and word.lower() not in known:
            continue
        before = tokens[i - 1].group(0).lower() if i else ""
        after = tokens[i + 1].group(0).lower().rstrip(".") if i + 1 < len(tokens) else ""
        korean_context = word.lower() in known or before in _TITLES or before.rstrip(".") in _FAMILY or after in _FAMILY
        said = _respell(word) if korean_context else None
        if said:
            out.append(text[last : token.start()] + said)
            last = token.start() + len(word)
    out.append(text[last:])
    return "".join(out)


# --- English titles ---------------------------------------------------------------------------------
_EN_TITLE = re.compile(r"\b(Dr|Mr|Mrs|Ms|Prof)\.(?=\s+\S)")
_EN_TITLE_WORDS = {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor"}


# --- the whole ----------------------------------------------------------------------------------------
def spoken(text: str, language: str, names: Iterable[str] = ()) -> str:
    """``text`` rewritten so that a voice in ``language`` (``en-US``, ``ko-KR``...) reads it right."""
    if not text or not any(c.isdigit() or c.isupper() for c in text):
        return text
    if language.lower().startswith("ko"):
        text = _PHONE.sub(lambda m: _phone(m, "ko"), text)
        text = _KO_PRICE_SIGN.sub(_ko_price_sign, text)
        text = _KO_TIME.sub(_ko_time, text)
        text = _KO_NATIVE.sub(_ko_native_count, text)
        text = _KO_NUMBER.sub(_ko_number, text)
        return _names(text, names)
    text = _PHONE.sub(lambda m: _phone(m, "en"), text)
    text = _EN_PRICE_SIGN.sub(_en_price, text)
    text = _EN_PRICE_UNIT.sub(lambda m: f"{_en_number(m.group(1))} won", text)
    text = re.sub(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])", lambda m: _en_number(m.group(0)), text)
    text = _names(text, names)  # before the titles: a title marks the Korean name after it
    return _EN_TITLE.sub(lambda m: _EN_TITLE_WORDS[m.group(1)], text)
