"""Words heard as other words that sound like them: "Which four are you on?" for "Which floor".

The recogniser's mistakes are most of the answerable questions calls leave unanswered
(docs/performance.md): a caller's word heard as another real word the knowledge does not have
("four" for "floor", "list" for "lift", "orthobonic" for "orthodontic", "one tower" for "lunch hour",
"sense and pay" for "Samsung Pay"). A second listen told the nearest passages' words wins some back;
the rest read, to the gate, like questions about something else.

:func:`respellings` puts the question back together with the words of the nearest passages that sound
most like what was heard: each span of one to three heard words with a word the passages do not
have is compared, sound by sound, with each word and pair of words the passages say. English sounds
are espeak-ng's phonemes (the phonemizer piper ships, in-process, ~0.2 ms a word, cached); Korean
is written as it sounds, so its letters (jamo) are compared. The cost of one sound for another is
lower within a kind (a vowel for a vowel, a nasal for a nasal) than across kinds.

A respelling is only ever a guess: the conversation offers it to the caller as a check ("Just to
check, are you asking: …?") and speaks the owner's answer only when the caller agrees, so a near
miss costs the caller one "no", never a wrong fact.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Final

from knowledge.retrieval.relevance import passage_text, topic_of
from knowledge.retrieval.terms import _STOP_EN, _WORD, stem, words

log = logging.getLogger(__name__)

__all__ = ["alike", "respellings", "sounds", "surest_respelling"]

#: How alike two sound sequences must be (1 = the same sounds) for one to stand for the other.
ALIKE_AT: Final = 0.7
#: ... and the words that differ, without the words both say ("Dr. King" / "Dr. Jiyoung" differ in
#: "King" / "Jiyoung"), at least this alike: a shared word must not carry a guess.
DIFFER_ALIKE_AT: Final = 0.5
#: Respellings tried per question, most alike first.
RESPELLINGS: Final = 4
#: Spans of this many heard words at most are respelled, with phrases of at most two words.
SPAN_WORDS: Final = 3
PHRASE_WORDS: Final = 2

#: Words that name nothing, in a span or a phrase: a respelling changes what a question is about.
_FUNCTION_EN: Final = frozenset(
    """a an the and or but so if then than that this these those it its is are was were be been am do does did
    have has had can could will would shall should may might must i me my you your we our us he she him her his
    they them their what which who whom whose when where why how to of for from in on at by with into up out
    not no yes any some there here just please um uh oh okay ok""".split()
)

_KINDS: Final = (
    ("vowel", frozenset("aeiouyæɑɒɔəɚɛɜɝɪʊʌʏøœɐɘɵɤɯᵻɨ")),
    ("nasal", frozenset("mnŋɲɴ")),
    ("stop", frozenset("pbtdkgɡʔɾc")),
    ("fricative", frozenset("fvθðszʃʒhxçɣχʁʂʐɕʑ")),
    ("approximant", frozenset("lɹrwjɫʋɻʎ")),
)
_KIND_OF: Final = {sound: kind for kind, sounds_ in _KINDS for sound in sounds_}
#: Korean letters (conjoining jamo): vowels, and the consonants in one kind.
_JAMO_VOWELS: Final = frozenset(chr(c) for c in range(0x1161, 0x1176))
_HANGUL: Final = re.compile(r"[\uac00-\ud7a3]")

_ESPEAK_LOCK = threading.Lock()
_espeak: object | None = None
_espeak_failed = False


def _phonemizer() -> object | None:
    """piper's espeak-ng phonemizer, loaded once; None where piper-tts is not installed."""
    global _espeak, _espeak_failed
    with _ESPEAK_LOCK:
        if _espeak is None and not _espeak_failed:
            try:
                from piper.phonemize_espeak import EspeakPhonemizer

                _espeak = EspeakPhonemizer()
            except Exception as exc:  # noqa: BLE001 - no phonemizer: nothing is respelled, nothing breaks
                log.warning("no phonemizer for respelling misheard words: %r", exc)
                _espeak_failed = True
        return _espeak


@lru_cache(maxsize=65536)
def sounds(text: str) -> tuple[str, ...]:
    """The sounds of ``text``: espeak-ng's English phonemes, or a Korean text's letters (jamo); stress,
    length and spaces left out. Empty when nothing can tell (no phonemizer)."""
    if _HANGUL.search(text):
        return tuple(c for c in unicodedata.normalize("NFD", text) if 0x1100 <= ord(c) <= 0x11FF)
    phonemizer = _phonemizer()
    if phonemizer is None:
        return ()
    # The English voice only: piper's voices here are English (the same espeak voice, so a TTS
    # thread phonemizing beside this reads its own sentence right); each call holds the GIL.
    sentences = phonemizer.phonemize("en-us", text)  # type: ignore[attr-defined]
    return tuple(p for sentence in sentences for p in sentence if p in _KIND_OF)


def _kind(sound: str) -> str:
    if sound in _JAMO_VOWELS:
        return "vowel"
    return _KIND_OF.get(sound, "consonant")


def _substitution(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if _kind(a) == _kind(b) else 1.0


def _indel(sound: str) -> float:
    return 0.7 if _kind(sound) == "vowel" else 1.0


def alike(a: Sequence[str], b: Sequence[str]) -> float:
    """1 for the same sounds, towards 0 the more it takes to turn one into the other."""
    if not a or not b:
        return 0.0
    previous = [0.0]
    for sound in b:
        previous.append(previous[-1] + _indel(sound))
    for x in a:
        current = [previous[0] + _indel(x)]
        for j, y in enumerate(b, start=1):
            current.append(
                min(previous[j - 1] + _substitution(x, y), previous[j] + _indel(x), current[j - 1] + _indel(y))
            )
        previous = current
    return max(0.0, 1.0 - previous[-1] / max(len(a), len(b)))


def _names_something(word: str) -> bool:
    return bool(_HANGUL.search(word)) or (
        len(word) >= 3 and word not in _FUNCTION_EN and word not in _STOP_EN and not word.isdigit()
    )


def _phrases(texts: Iterable[str]) -> dict[str, str]:
    """Each word and pair of words the texts say that names something, lower-cased, with how the texts
    write it ("samsung pay": "Samsung Pay")."""
    found: dict[str, str] = {}
    for text in texts:
        said = list(_WORD.finditer(unicodedata.normalize("NFKC", text)))
        for size in range(1, PHRASE_WORDS + 1):
            for start in range(len(said) - size + 1):
                phrase = [m.group() for m in said[start : start + size]]
                lowered = [w.lower() for w in phrase]
                if any(_names_something(w) for w in lowered) and not (phrase[0].isdigit() or phrase[-1].isdigit()):
                    found.setdefault(" ".join(lowered), text[said[start].start() : said[start + size - 1].end()])
    return found


def _differ_alike(span: list[str], phrase: list[str]) -> bool:
    """Whether the words that differ between a heard span and a phrase sound alike on their own
    (:data:`DIFFER_ALIKE_AT`); False when one is the other with words left out."""
    while span and phrase and span[0] == phrase[0]:
        span, phrase = span[1:], phrase[1:]
    while span and phrase and span[-1] == phrase[-1]:
        span, phrase = span[:-1], phrase[:-1]
    if not span or not phrase:
        return False
    return alike(sounds(" ".join(span)), sounds(" ".join(phrase))) >= DIFFER_ALIKE_AT


def respellings(question: str, texts: Iterable[str], limit: int = RESPELLINGS) -> list[tuple[float, str]]:
    """``question`` with a span of its words the ``texts`` do not say replaced by a word or two of
    theirs that sound most like it, most alike first: ``[(0.75, "Which floor are you on?")]``.

    Only spans with a word naming something that no text says are respelled; a question whose every
    word the passages have, or whose sounds nothing comes near (:data:`ALIKE_AT`), gives none.
    """
    texts = [unicodedata.normalize("NFKC", text) for text in texts]
    question = unicodedata.normalize("NFKC", question)
    known = {stem(w) for text in texts for w in words(text)}
    tokens = list(_WORD.finditer(question))
    heard = [m.group().lower().replace("’", "'") for m in tokens]
    unknown = [i for i, w in enumerate(heard) if _names_something(w) and stem(w) not in known]
    if not unknown:
        return []
    phrases = [(written, sounds(phrase)) for phrase, written in sorted(_phrases(texts).items())]
    found: dict[str, float] = {}
    spans = {
        (start, start + size)
        for i in unknown
        for size in range(1, SPAN_WORDS + 1)
        for start in range(max(0, i - size + 1), min(i, len(heard) - size) + 1)
    }
    for start, end in spans:
        if heard[start] in _FUNCTION_EN and end - start > 1:
            continue  # "which four" is "four" respelled, "which" kept
        heard_sounds = sounds(" ".join(heard[start:end]))
        if not heard_sounds:
            continue
        for written, phrase_sounds in phrases:
            if not phrase_sounds or not 0.6 <= len(phrase_sounds) / len(heard_sounds) <= 1.67:
                continue
            score = alike(heard_sounds, phrase_sounds)
            if score < ALIKE_AT or not _differ_alike(heard[start:end], words(written)):
                continue
            text = question[: tokens[start].start()] + written + question[tokens[end - 1].end() :]
            if score > found.get(text, 0.0):
                found[text] = score
    return sorted(((score, text) for text, score in found.items()), key=lambda item: -item[0])[:limit]


async def surest_respelling(
    question: str, candidates: Sequence[Any], judged: Callable[[str], Awaitable[Any | None]]
) -> tuple[str, Any] | None:
    """Of ``question``'s respellings with the ``candidates``' words, the one a passage with a topic
    answers and the gate is surest of, with that verdict (``judged``: the search and the gate for a
    text); None when no respelling is answered. "Which form …" and "Which floor …" sound as alike:
    the gate decides. Respelling runs on a thread (tens of ms of pure Python)."""
    guesses = await asyncio.to_thread(respellings, question, [passage_text(p) for p in candidates])
    best: tuple[str, Any] | None = None
    for _, guess in guesses:
        verdict = await judged(guess)
        if verdict is None or verdict.passage is None or topic_of(verdict.passage) is None:
            continue
        if best is None or float(verdict.probability) > float(best[1].probability):
            best = (guess, verdict)
    return best
