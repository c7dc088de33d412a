"""PII masking of transcripts: phone numbers, card numbers, e-mail addresses, resident registration numbers.

Pure Python (no Django): the log processor and the knowledge extraction both call :func:`mask_pii`.

Theory of operation. Speech recognition writes numbers in many ways: ``010-1234-5678``,
``01012345678``, ``+82 10 1234 5678``, ``zero one zero one two three four ...``, ``oh one oh``,
``공일공 일이삼사 오육칠팔``, ``영일영`` and mixtures (``010 one two three four``). So masking works
on *digit runs*, not on a regex per format:

1. :data:`_TOKEN` finds digit tokens: groups of ASCII digits (``+`` allowed in front), English digit
   words (``zero``, ``oh``, ``one`` … ``nine``, ``double``/``triple`` repeats), and runs of Korean
   digit syllables (``공 영 일 이 삼 사 오 육 칠 팔 구``).
2. Tokens separated only by blanks, ``-``, ``.``, ``/``, brackets, ``, `` or a spoken "dash" form one
   run; anything else (a word, ``:``, ``,`` between digits as in ``12,000``) ends it.
3. Each run is classified, longest token span first from the left (:func:`_classify`):
   a Korean or international phone number (a structure check: prefix and length), a resident
   registration number (``YYMMDD`` a real date and a valid 7th digit), a card number (13–19 digits
   passing the Luhn check, so order numbers are left alone). Unclassified digits stay as they were.

Masks keep what helps a reader and nothing that identifies: ``[phone …5678]`` (last 4 digits),
``[card]``, ``[email]``, ``[rrn]``. Masking is idempotent: a masked text masks to itself.

Deliberate limits (each is a case in ``tests/unit/privacy_cases.jsonl``): a bare 10-digit number
not starting with 0 and without ``+`` is not a phone number unless grouped 3-3-4 (North American);
Korean numerals with place values (``천``, ``백``) and native Korean numbers (``하나``, ``둘``) are not read.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date
from operator import mul
from typing import Final

__all__ = ["PII_KINDS", "mask_pii", "normalise_phone"]

#: The placeholder kinds; a mask is ``[<kind>]`` or ``[phone …NNNN]``.
PII_KINDS: Final = ("phone", "card", "email", "rrn")

_EN_DIGITS: Final = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_KO_DIGITS: Final = {
    "공": "0",
    "영": "0",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "륙": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
}
_KO_SET: Final = "".join(_KO_DIGITS)
# A Korean digit run may be followed by a particle or copula ("…오육칠팔로", "…번이에요"), not by a
# syllable that makes it an ordinary word ("오늘" is "today", not "5" + "늘").
_KO_FOLLOW: Final = "번으로이입예요야인은는을를가에라까하고도만"
_HANGUL: Final = re.compile(r"[가-힣]")
_EN_WORD: Final = "|".join(_EN_DIGITS)
_TOKEN: Final = re.compile(
    rf"(?P<plus>(?:\+|\bplus\s+)?)"
    rf"(?:(?P<ascii>(?<![A-Za-z0-9])\d+(?![0-9]))"
    rf"|(?P<multi>\b(?:double|triple)\s+(?:{_EN_WORD}|\d)\b)"
    rf"|(?P<en>\b(?:{_EN_WORD})\b)"
    rf"|(?P<ko>(?<![가-힣])[{_KO_SET}]+(?![가-힣](?<![{_KO_FOLLOW}]))))",
    re.IGNORECASE,
)
# Possessive blanks: no separator word starts with a blank, so giving blanks back never helps, and
# backtracking into them made a long gap of blanks cost its square.
_SEPARATOR: Final = re.compile(r"\s*+(?:[-–./()]|,\s|dash|hyphen|대시|다시|에)?\s*+", re.IGNORECASE)
# The e-mail expressions are bounded by what an address can be (RFC 5321: a local part of at most
# 64 characters, labels of at most 63, and here at most 8 dots a side) and their blanks are
# possessive (no word they precede starts with a blank): unbounded, a long "a.a.a…" or
# "a dot a dot …" was rescanned from every word in it, a cost that grew with the square.
_EMAIL: Final = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,}"
)
_TLD: Final = r"(?:com|net|org|kr|co|io|edu|gov|me|biz|info)"
_SPOKEN_EMAIL: Final = re.compile(
    rf"\b[a-z0-9][a-z0-9._-]{{0,63}}(?:\s++(?:dot|점|닷)\s++[a-z0-9_-]{{1,63}}){{0,8}}\s++(?:at|골뱅이|앳)\s++"
    rf"[a-z0-9-]{{1,63}}(?:\s++(?:dot|점|닷)\s++[a-z0-9-]{{1,63}}){{0,8}}\s++(?:dot|점|닷)\s++{_TLD}\b",
    re.IGNORECASE,
)
_KO_PHONE: Final = re.compile(r"01[016789]\d{7,8}|02\d{7,8}|0[3-6][1-5]\d{7,8}|070\d{8}|050\d{8,9}|080\d{7,8}")
_MASK: Final = re.compile(r"\[(?:phone|card|email|rrn)[^\]]{0,12}\]")
#: The most digits any masked kind has (a card number); longer spans are never tried.
_MAX_DIGITS: Final = 19


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    digits: str
    plus: bool
    spelled: bool  # written as words (one token per digit): no grouping to read
    alternative: _Token | None = None  # the same token read without a trailing copula 이


def mask_pii(text: str) -> str:
    """``text`` with phone, card, e-mail and resident registration numbers replaced by placeholders.

    Args:
        text: A transcript line, a knowledge text or a log message (any language).

    Returns:
        The text with each found item replaced by ``[phone …NNNN]``, ``[card]``, ``[email]`` or
        ``[rrn]``; everything else unchanged.
    """
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _SPOKEN_EMAIL.sub("[email]", text)
    pieces: list[str] = []
    cursor = 0
    for start, end, mask in _number_masks(text):
        pieces.append(text[cursor:start])
        pieces.append(mask)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def normalise_phone(number: str) -> str:
    """One spelling per phone number, for matching: Korean numbers in national form, digits only.

    ``01012345678``, ``010-1234-5678``, ``+82 10-1234-5678``, ``+82 010 1234 5678`` and
    ``0082 10 1234 5678`` all give ``01012345678``; other numbers keep their digits (an
    international ``+1 212 555 1234`` gives ``12125551234``); no digits gives ``""``.
    """
    digits = re.sub(r"\D", "", number)
    international = number.strip().startswith("+") or digits.startswith("00")
    digits = digits[2:] if digits.startswith("00") else digits
    if digits.startswith("82") and (international or len(digits) >= 11):
        rest = digits[2:]
        return rest if rest.startswith("0") else "0" + rest
    return digits


def _number_masks(text: str) -> list[tuple[int, int, str]]:
    masks: list[tuple[int, int, str]] = []
    for run in _runs(text):
        sieve = _Sieve(run)
        index = 0
        while index < len(run):
            for stop in sieve.stops(index):
                span = run[index:stop]
                mask = _classify(span)
                last = span[-1].alternative
                if mask is None and last is not None:
                    span = [*span[:-1], last]
                    mask = _classify(span)
                if mask is not None:
                    start, end = span[0].start, span[-1].end
                    if text[start - 1 : start] == "(" and ")" in text[start:end]:
                        start -= 1  # "(02) 123-4567": the area code's bracket goes with it
                    masks.append((start, end, mask))
                    index = stop
                    break
            else:
                index += 1
    return masks


class _Sieve:
    """Which spans of a run are worth :func:`_classify`: a cheap necessary condition per span.

    Trying every span of a run made a long ``1-1-1-…`` cost the cube of its length. Every token holds
    at least one digit (a copula-less alternative too), so only spans of at most ``_MAX_DIGITS + 1``
    tokens can be a number; and from the digit count, the first digit and prefix sums of the Luhn
    weights, most of those are ruled out in constant time. The work is linear in the run's length,
    and the spans tried, longest first, are the ones that could match: the result is unchanged.
    """

    def __init__(self, run: list[_Token]) -> None:
        self.run = run
        self.digits = "".join(t.digits for t in run)
        self.offsets = [0]
        for token in run:
            self.offsets.append(self.offsets[-1] + len(token.digits))
        # cuttable[i]: may a number begin or end just before run[i] (see _cut)
        self.cuttable = [_cut(run, i - 1, i) for i in range(len(run) + 1)]
        # plain[p][i] / doubled[p][i]: Luhn values of the digits before position i whose position has parity p.
        self.plain = ([0], [0])
        self.doubled = ([0], [0])
        for position, char in enumerate(self.digits):
            value = ord(char) - 48
            double = 2 * value - 9 if value > 4 else 2 * value
            for parity in (0, 1):
                mine = position % 2 == parity
                self.plain[parity].append(self.plain[parity][-1] + (value if mine else 0))
                self.doubled[parity].append(self.doubled[parity][-1] + (double if mine else 0))

    def stops(self, index: int) -> list[int]:
        """The ends of the spans starting at ``index`` that may be PII, longest first."""
        run, offsets, cuttable = self.run, self.offsets, self.cuttable
        if not cuttable[index]:
            return []
        first = run[index]
        begin = offsets[index]
        # the spans of 7 to _MAX_DIGITS + 1 digits (one more: a copula-less alternative has one less)
        low = bisect_left(offsets, begin + 7, index + 1)
        high = min(bisect_right(offsets, begin + _MAX_DIGITS + 1, index + 1), len(offsets)) - 1
        if first.plus or (first.digits == "82" and not first.spelled):  # international: too rare to sieve
            return [stop for stop in range(high, low - 1, -1) if cuttable[stop]]
        return [
            stop
            for stop in range(high, low - 1, -1)
            if cuttable[stop] and (run[stop - 1].alternative is not None or self._may_be_pii(index, stop))
        ]

    def _may_be_pii(self, index: int, stop: int) -> bool:
        """False only where :func:`_classify` would say None (domestic spans, no alternative)."""
        begin, end = self.offsets[index], self.offsets[stop]
        count = end - begin
        digits = self.digits
        if count > _MAX_DIGITS:
            return False
        if count < 13:
            if digits[begin] == "0" and count >= 9:
                return _KO_PHONE.fullmatch(digits, begin, end) is not None
            return (stop - index, count) in ((2, 8), (3, 10))  # 1588-1234, 212-555-1234
        if count == 13 and digits[begin + 6] in "12345678" and "01" <= digits[begin + 2 : begin + 4] <= "12":
            return True  # a resident registration number (YYMMDD-G…)
        last = (end - 1) % 2  # the check digit's parity: digits of that parity count plain, others doubled
        total = (
            self.plain[last][end]
            - self.plain[last][begin]
            + self.doubled[1 - last][end]
            - self.doubled[1 - last][begin]
        )
        return total % 10 == 0  # a card number passes the Luhn check


def _cut(run: list[_Token], left: int, right: int) -> bool:
    """May a number begin or end between ``run[left]`` and ``run[right]``?

    Not inside a sequence of spelled digits ("… five six seven …"): any slice of a long spoken
    digit string would read as some number, so a spoken number is taken whole or not at all.
    """
    if left < 0 or right >= len(run):
        return True
    return not (run[left].spelled and run[right].spelled)


def _runs(text: str) -> list[list[_Token]]:
    protected = [(m.start(), m.end()) for m in _MASK.finditer(text)]
    starts = [start for start, _ in protected]
    runs: list[list[_Token]] = []
    current: list[_Token] = []
    for match in _TOKEN.finditer(text):
        inside = bisect_right(starts, match.start()) - 1  # the last mask starting at or before it
        if inside >= 0 and match.start() < protected[inside][1]:
            continue
        token = _token(match)
        if current and not _SEPARATOR.fullmatch(text[current[-1].end : token.start]):
            runs.append(current)
            current = []
        if current and token.plus:  # "+" starts a new number
            runs.append(current)
            current = []
        current.append(token)
    if current:
        runs.append(current)
    return runs


def _token(match: re.Match[str]) -> _Token:
    plus = bool(match.group("plus"))
    if match.group("ascii"):
        return _Token(match.start(), match.end(), match.group("ascii"), plus, False)
    if match.group("multi"):
        count, word = match.group("multi").lower().split()
        digit = _EN_DIGITS.get(word, word)
        return _Token(match.start(), match.end(), digit * (2 if count == "double" else 3), plus, True)
    if match.group("en"):
        return _Token(match.start(), match.end(), _EN_DIGITS[match.group("en").lower()], plus, True)
    syllables = match.group("ko")
    digits = "".join(_KO_DIGITS[s] for s in syllables)
    alternative = None
    if len(syllables) > 1 and syllables.endswith("이") and _HANGUL.match(match.string, match.end()):
        # "…오육칠팔이에요": the last 이 may be the copula rather than a 2; the classifier tries both.
        alternative = _Token(match.start(), match.end() - 1, digits[:-1], plus, len(syllables) == 2)
    return _Token(match.start(), match.end(), digits, plus, len(syllables) == 1, alternative)


def _classify(tokens: list[_Token]) -> str | None:
    """The mask of ``tokens`` read as one number, or None when it is none of the PII kinds."""
    digits = "".join(t.digits for t in tokens)
    if len(digits) < 7 or len(digits) > _MAX_DIGITS:
        return None
    if tokens[0].plus or (len(tokens) > 1 and tokens[0].digits == "82" and not tokens[0].spelled):
        return _international(digits, explicit=tokens[0].plus)
    if tokens[0].plus:
        return None
    groups = tuple(len(t.digits) for t in tokens)
    grouped = not any(t.spelled for t in tokens)
    if _KO_PHONE.fullmatch(digits):
        return _phone(digits)
    if grouped and len(tokens) == 2 and groups == (4, 4) and re.fullmatch(r"1[5-9]\d{6}", digits):
        return _phone(digits)  # Korean company numbers: 1588-1234
    if grouped and groups == (3, 3, 4) and re.fullmatch(r"[2-9]\d\d[2-9]\d{6}", digits):
        return _phone(digits)  # North American 212-555-1234
    if len(digits) == 13 and _is_rrn(digits, checksum=groups != (6, 7)):
        return "[rrn]"
    if 13 <= len(digits) <= 19 and _luhn(digits):
        return "[card]"
    return None


def _international(digits: str, *, explicit: bool) -> str | None:
    if digits.startswith("82"):
        national = digits[2:] if digits[2:3] == "0" else "0" + digits[2:]
        return _phone(national) if _KO_PHONE.fullmatch(national) else None
    return _phone(digits) if explicit and 8 <= len(digits) <= 15 else None


def _phone(digits: str) -> str:
    return f"[phone …{digits[-4:]}]"


def _is_rrn(digits: str, *, checksum: bool) -> bool:
    """``YYMMDDGNNNNNN``: a past birth date and a gender/century digit 1–8 (9, 0 are pre-1900).

    Written ``YYMMDD-NNNNNNN`` the shape says enough. Thirteen digits in a row are also tracking
    and order numbers, so there the check digit must hold too (numbers issued since October 2020
    have none; read without the dash they stay unmasked, a known miss).
    """
    if checksum:
        total = sum(map(mul, map(int, digits[:12]), (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)))
        if (11 - total % 11) % 10 != int(digits[12]):
            return False
    century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000, "8": 2000}
    base = century.get(digits[6])
    if base is None:
        return False
    try:
        born = date(base + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return False
    return born <= date.today()


_LUHN_DOUBLED: Final = {str(d): 2 * d - 9 if d > 4 else 2 * d for d in range(10)}


def _luhn(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(map(_LUHN_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0
