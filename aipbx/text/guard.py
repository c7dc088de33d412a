"""The output guard: the last check on every piece of a reply before it is synthesised and heard.

The prompt already treats caller speech and knowledge as data (``prompt.py``), but a model can still be
talked into obeying them. Whatever it then writes must not reach the caller if it

* quotes the system prompt: a long verbatim run of it (a character n-gram of :data:`LEAK_CHARS`
  normalised characters, Hangul counted double because one syllable carries a word's worth of
  meaning), or any secret-looking token of it (letters and digits mixed, e.g. an access code);
* contains markup: ``<context>``-style tags, chat-template tokens (``<|im_start|>``, ``[INST]``);
* looks like instructions or actions: role prefixes (``system:``), "ignore previous instructions",
  "system prompt", dialplan applications (``Dial(``), channel technologies (``PJSIP/``), ``${...}``;
* states a number the knowledge does not: a price, time, date or phone number written in digits
  that occurs in none of the texts the reply may repeat, nor in what the caller said (a reply may
  read back "a table for two at 7 pm"). A model given the crown's price and asked
  about veneers must not say a price at all; when it does, the caller hears the honest fallback.
  Digits are compared as runs (``450,000`` is ``450000``; ``9:30`` is ``9`` and ``30``), so a
  number spelt out in words is not checked and a figure the model computed is refused.

Text that also occurs in what the reply may legitimately repeat (the owner's name, the retrieved
passages) is never counted as a leak. A refused piece is replaced with the polite fallback and the
rest of that reply is dropped. The check is a few set lookups per character: it runs on every
sentence, on the event loop, without measurable cost.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from aipbx.text.sentences import SentenceSplitter

log = logging.getLogger(__name__)

LEAK_CHARS = 24  # a verbatim run this long (Hangul syllables count 2) is a quote, not a coincidence

_MARKUP = re.compile(
    r"</?[A-Za-z_][\w:.-]*(\s[^<>]*)?/?>"  # <context>, </caller>, <system role="x"> (not "a < b > c")
    r"|<\s*/\s*[A-Za-z_][\w:.-]*\s*>"  # < /context >
    r"|<\|[^|<>]{1,40}\|>"  # <|im_start|>
    r"|\[/?(INST|SYS)\]|<<\s*/?SYS\s*>>",
    re.IGNORECASE,
)
_INSTRUCTION = re.compile(
    r"^\s*(system|assistant|user|developer|caller)\s*:"
    r"|\bignore\s+(all\s+|any\s+)?(the\s+|your\s+)?(previous|prior|above|earlier|preceding)\b"
    r"|\b(system|developer|hidden|initial)\s+(prompt|message|instructions?)\b"
    r"|\b(my|these|your)\s+(instructions|rules)\s+(are|say|were)\b"
    r"|시스템\s*(프롬프트|메시지|지시)|이전\s*(지시|명령)|규칙\s*[:：]|지시\s*사항",
    re.IGNORECASE | re.MULTILINE,
)
# Telephony actions: a reply is speech, never a dial string or an application call.
_ACTION = re.compile(
    r"\b(Dial|Originate|Redirect|BlindTransfer|AttendedTransfer|ChannelRedirect|Goto|GotoIf|Gosub|GosubIf"
    r"|TrySystem|AGI|EAGI|Stasis|ChanSpy|MixMonitor)\("  # an application call, as in a dialplan
    r"|\$\{|\bcontinueInDialplan\b|/ari/"
    r"|\b(PJSIP|SIP|IAX2|DAHDI|Local|UnicastRTP|AudioSocket|WebSocket)/\S",  # a dial string
)
_DIGITS = re.compile(r"\d+")
_THOUSANDS = re.compile(r"(?<=\d)[,\u066c](?=\d{3}(?!\d))")  # 450,000 -> 450000 (not 9,30 or 1,5)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{5,}")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _normalise(text: str, remove: Iterable[str] = ()) -> str:
    """Lower case, no spaces or punctuation, known names cut out, each Hangul syllable doubled."""
    text = text.lower()
    for name in remove:
        if name:
            text = text.replace(name.lower(), " ")
    text = _NOT_WORD.sub("", text)
    return _HANGUL.sub(lambda m: m.group(0) * 2, text)


def _grams(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def _secret_tokens(text: str) -> set[str]:
    """Tokens that look like codes or keys: long, mixing letters and digits."""
    return {
        token.lower()
        for token in _SECRET_TOKEN.findall(text)
        if any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    }


def _numbers(text: str) -> set[str]:
    """The digit runs of ``text``, thousands separators removed, each also without leading zeros."""
    runs = _DIGITS.findall(_THOUSANDS.sub("", unicodedata.normalize("NFKC", text)))
    return {*runs, *(run.lstrip("0") or "0" for run in runs)}


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str  # "markup" | "instruction" | "action" | "secret" | "prompt-quote" | "unsupported-number"


class ReplyGuard:
    """Checks reply pieces against one system prompt.

    Args:
        secret: The system prompt (everything the caller must never hear verbatim).
        allowed: Texts the reply may repeat (retrieved passages...).
        names: Names the reply may say, cut out before comparing (the owner).
        heard: What the caller said (and the call so far): the reply may repeat its numbers.
    """

    def __init__(
        self, secret: str, allowed: Iterable[str] = (), names: Iterable[str] = (), heard: Iterable[str] = ()
    ) -> None:
        self._names = tuple(n for n in names if n)
        allowed = list(allowed)
        allowed_norm = [_normalise(text, self._names) for text in allowed]
        allowed_grams: set[str] = set()
        for text in allowed_norm:
            allowed_grams |= _grams(text, LEAK_CHARS)
        self._grams = _grams(_normalise(secret, self._names), LEAK_CHARS) - allowed_grams
        allowed_raw = " ".join(allowed).lower()
        self._tokens = {t for t in _secret_tokens(secret) if t not in allowed_raw}
        self._numbers = _numbers(" ".join([*allowed, *self._names, *heard]))

    def check(self, piece: str) -> Refusal | None:
        """None if ``piece`` may be spoken, else the rule it breaks."""
        piece = unicodedata.normalize("NFKC", piece)  # fullwidth look-alikes are the real thing
        if _MARKUP.search(piece):
            return Refusal("markup")
        if _ACTION.search(piece):
            return Refusal("action")
        if _INSTRUCTION.search(piece):
            return Refusal("instruction")
        lowered = piece.lower()
        if any(token in lowered for token in self._tokens):
            return Refusal("secret")
        norm = _normalise(piece, self._names)
        if any(norm[i : i + LEAK_CHARS] in self._grams for i in range(len(norm) - LEAK_CHARS + 1)):
            return Refusal("prompt-quote")
        if not _numbers(piece) <= self._numbers:
            return Refusal("unsupported-number")
        return None


class GuardedSplitter:
    """A :class:`SentenceSplitter` whose pieces have passed the guard.

    The first refused piece is replaced by ``fallback``; everything after it in the reply is dropped.
    """

    def __init__(self, guard: ReplyGuard, fallback: str, splitter: SentenceSplitter | None = None) -> None:
        self.guard = guard
        self.fallback = fallback
        self.splitter = splitter or SentenceSplitter()
        self.refusal: Refusal | None = None

    def push(self, delta: str) -> list[str]:
        return self._checked(self.splitter.push(delta))

    def flush(self) -> list[str]:
        return self._checked(self.splitter.flush())

    def _checked(self, pieces: list[str]) -> list[str]:
        passed: list[str] = []
        for piece in pieces:
            if self.refusal is not None:
                break
            refusal = self.guard.check(piece)
            if refusal is not None:
                self.refusal = refusal
                # The rule only: the piece itself may be the very secret that must not spread.
                log.warning("reply piece refused by the output guard (%s); speaking the fallback", refusal.rule)
                passed.append(self.fallback)
                break
            passed.append(piece)
        return passed


def reply_splitter(
    system: str,
    owner: str,
    passages: Iterable[str],
    fallback: str,
    heard: Iterable[str] = (),
    business: str = "",
) -> GuardedSplitter:
    """The splitter for one reply: guarded against ``system``, allowed to repeat ``passages`` (and the
    numbers of ``heard``, the caller's words) and to say the owner's and the business's names."""
    return GuardedSplitter(ReplyGuard(system, allowed=passages, names=[owner, business], heard=heard), fallback)
