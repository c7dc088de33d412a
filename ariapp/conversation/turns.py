"""Has the caller finished their thought? The text half of end-of-turn.

Silence ends an utterance after ``end_of_turn_ms`` (300 ms), which keeps answers fast but cuts in
when a caller pauses mid-sentence ("Could you tell me ... [0.8 s] ... when you close?"). The
recognised text often shows it: a thought that stops on "and", "the", "um", a comma or "...", or a
Korean connective ending ("-고", "-는데", "그리고"), is not a question yet. For those — and only
those — the orchestrator waits :data:`HOLD_S` longer before answering; if the caller goes on, the
two parts are heard as one question (the machine's THINKING + onset rule). Complete questions
("... on Saturdays?") are answered at once, so the usual latency does not change.

The audio is the other half: the recogniser often hides an unfinished thought ("My son is seven
and [pause]" comes out as "My son is seven."), while an end-of-turn model that hears how the words
end (Smart Turn, :class:`aipbx.providers.local.turn.SmartTurn`) is rarely wrong when it is sure a
thought goes on (:data:`INCOMPLETE_BELOW`), though unreliable when it is not. :func:`should_wait`
holds when either says so. ``python -m bench endpointing`` measures both on the turn-taking set
(the synthetic caller through G.711): the words held 21 of 62 fragments, with the model 28; with the
words' question-tune rule below 42-45, delaying 5-8 of 144 complete questions; with the rules for
what whisper completes (a verb without its object, an auxiliary without its verb, a first question's
bare "that") 58 of 62, delaying 9 of 158 (docs/performance.md).
"""

from __future__ import annotations

import re
from typing import Final

from knowledge.retrieval.terms import introduction_only

__all__ = [
    "BACKCHANNEL_HINTS",
    "BACKCHANNEL_MAX_S",
    "HOLD_S",
    "INCOMPLETE_BELOW",
    "backchannel",
    "should_wait",
    "situation_only",
    "unfinished",
    "UNSURE_AFTER_S",
]

#: How much longer an unfinished thought is given (after end-of-turn silence and recognition).
HOLD_S: Final = 0.7

#: A reply that does not answer (not sure, or a person asked for lack of knowledge) starts no sooner
#: than this after the caller's last sound: a fragment the recogniser rounded off into a sentence
#: ("Which days is" heard as "Which Stasis?") is most often unsure, and the caller pausing 0.5-1.0 s
#: inside a question goes on first and is heard whole. Answers and checks are not held back.
UNSURE_AFTER_S: Final = 1.1

#: The end-of-turn model's probability of a complete turn below which the caller is given
#: :data:`HOLD_S` more whatever the words say (its own 0.5 would delay one question in ten).
INCOMPLETE_BELOW: Final = 0.1

# English words a finished sentence does not end on: conjunctions, articles, prepositions,
# fillers, and the openings of a request ("could you tell me").
_EN_OPEN_ENDS: Final = frozenset(
    """
and or but so because if whether that which who whose where when how what why than then
the a an my your our their his her its this these those some any
to for of about with from at on in into by as like
um uh er erm hmm mm well
is are was were do does did can could would will should may might
me tell know wondering ask
""".split()
)

# What whisper writes for a caller's "uh" or "um" said on its own after some words.
_EN_FILLER_HEARD: Final = frozenset({"huh", "uh", "um", "up", "oh", "ah", "er"})

# A caller's statement of their situation, which the question follows ("I'm over 65. [pause] Is my
# implant covered?", "My son is seven. [pause] Can he ..."): answered alone, its half of the question
# is lost and the other half asked without it.
_EN_SITUATION: Final = re.compile(
    r"^(?:i'?m|i am|we'?re|we are|(?:my|our)\s+\w+(?:\s+\w+)?\s+(?:is|are|was|has|have))\b[^?!]*[.,]?$",
    re.IGNORECASE,
)

# Korean: connective endings and conjunctions that leave a sentence open; fillers.
# Of those, words no finished sentence ends on even when the recogniser adds a full stop or a question
# mark (whisper "completes" fragments: "So I was wondering, um" comes out as "so i was wondering.").
_EN_NEVER_LAST: Final = frozenset(
    "and or but because the a an um uh er erm wondering if whether your my our their very".split()
)
# Whisper puts a question mark after a fragment said with a question's tune ("Are you open on?",
# "Is there parking for?"). A question ending on one of these prepositions is open unless a
# wh-word opened it, whose object the preposition can take ("What is it for?", "Where are you from?").
_EN_STRANDED: Final = frozenset("for on at by to about with from through near into of".split())
_EN_WH_OBJECT: Final = frozenset("what who whom which where".split())
_EN_COPULA: Final = frozenset("are is was were".split())
_EN_RELATIVE: Final = frozenset("that which who".split())
# A verb that takes an object, after its subject with nothing following ("Do you take?", "... if we
# bring?"), unless a wh-word of the same clause is its object ("What do you take?"). Not "book":
# "How do I book?" is a question.
_EN_TRANSITIVE: Final = frozenset("take bring accept need have get want use offer recommend cover".split())
_EN_FRONTED_OBJECT: Final = _EN_WH_OBJECT | frozenset("many much anything something everything".split())
_EN_SUBJECT: Final = frozenset("i you we they guys to".split())  # "... possible to bring?"
# An auxiliary opening its clause, then its subject and no verb ("So for the M plan, does the price?").
_EN_AUXILIARY: Final = frozenset("do does did can could will would should".split())
_EN_DETERMINER: Final = frozenset("the a an my your our their".split())  # not "Will that work?"
# What a first question cannot point back to: nothing was said before it ("What's the" heard as "What's
# that?", "How much is the" as "How much is that?").
_EN_REFERENCE: Final = frozenset("that this it".split())
_CLAUSE: Final = re.compile(r"[,.;:!?]|\b(?:if|when|because|and|but|so|while)\b", re.IGNORECASE)

_KO_OPEN_WORDS: Final = frozenset("그리고 그런데 근데 그래서 그러니까 그러면 그럼 혹시 저기 음 어 아 그 저 또".split())
_KO_OPEN_ENDINGS: Final = (
    "에도",
    "는데",
    "은데",
    "인데",
    "니까",
    "어서",
    "아서",
    "해서",
    "지만",
    "거나",
    "고요",
    "면서",
    "려고",
    "으면",
    "하고",
    "이랑",
    "에서",
    "에게",
    "한테",
    "부터",
    "까지",
    "고",
    "면",
)

_WORD: Final = re.compile(r"[\w']+", re.UNICODE)
# A hum however spelt: "mm", "hmm", "mhm", "nm" (tiny.en's "N-m-" for "mm-hmm"), "uh-huh".
_HUM: Final = re.compile(r"(?=[hn]*m)[mhn]+|(?:u+h+){1,2}")

#: What the recogniser is told to expect when a short sound over our reply was not heard as a
#: backchannel: without it tiny.en hears "mm-hmm" as "in a month" or "and make them" (9 of 16 hums
#: and acknowledgements through G.711; 4 with it, and none of 24 short interruptions taken for one).
BACKCHANNEL_HINTS: Final = {"en": ("Mm-hmm", "Uh-huh", "Mm", "Okay"), "ko": ("네", "예", "음", "응")}

#: An utterance over our reply longer than this is an interruption without asking the recogniser.
#: It counts the silence that ended it (the end of turn, ~0.3 s) and the VAD's pre-roll: "oh, I see"
#: or "okay, yeah" spoken by the synthetic caller come to 1.3-1.5 s. Listening costs an interruption
#: nothing: what was heard is the question the reply to it starts from.
BACKCHANNEL_MAX_S: Final = 1.6

# What a listener says to show they follow, not to take the turn (every word must be one of these,
# or a hum: "mm", "mhm", "hmm", "uh-huh" however the recogniser spells it). "amen" is how tiny.en
# hears a short "mm" (2 of 5 renderings of the bench's "Mm.", on either listen; no interruption of the
# endpointing bench's 29 was ever heard so): nobody takes the turn from a receptionist with it.
_BACKCHANNEL_WORDS: Final = frozenset(
    """
mm mmm mhm mmhmm hm hmm uh huh um ah aha oh okay ok yeah yes yep yup right sure alright i see got it
cool great good fine amen
네 예 응 음 아 어 오 네네 예예 아하 그렇군요 그렇구나 그래요 알겠습니다 알겠어요 맞아요 좋아요
""".split()
)


#: Where a recognised utterance starts a new sentence: after ".", "?" or "!", but not after a title's
#: full stop ("Dr. Oh" is one name, not a sentence and a lone syllable).
_SENTENCE_END: Final = re.compile(r"(?<=[.?!])(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bProf\.)\s+")


def unfinished(text: str, language: str = "en-US", first: bool = False) -> bool:
    """Whether ``text`` (a recognised utterance) stops in the middle of a thought; ``first``: it is the
    caller's first utterance of the call, so a bare "that" or "it" at its end points back at nothing."""
    stripped = text.strip()
    if not stripped:
        return False
    words = _WORD.findall(stripped.lower())
    if words and (words[-1] in _EN_NEVER_LAST or _en_open_question(words, stripped, first)):
        return True
    if len(words) > 1 and words[-1] in _EN_FILLER_HEARD and re.search(r",\s*\w+\W*$", stripped):
        # "Could you tell me, uh" heard as "Could you tell me, huh?" or "Do you take, oh?": a filler
        # after the words, not a question
        return True
    sentences = [m for m in _SENTENCE_END.split(stripped) if m]
    last_words = _WORD.findall(sentences[-1])
    if len(sentences) > 1 and len(last_words) == 1 and len(last_words[0]) <= 3:
        # a lone syllable after the words ("Do you take? No.": the caller's "uh") finishes nothing
        return unfinished(" ".join(sentences[:-1]), language, first)
    if stripped.endswith(("?", "!", "。")):
        return False
    if stripped.endswith((",", "...", "…", "-", "—", ":")):
        return True
    if not words:
        return False
    last = words[-1]
    if language.lower().startswith("ko") or _is_hangul(last):
        if stripped.endswith("."):
            return False  # recognisers put a full stop after a finished Korean sentence
        return last in _KO_OPEN_WORDS or last.endswith(_KO_OPEN_ENDINGS)
    return last in _EN_OPEN_ENDS


def _en_open_question(words: list[str], text: str, first: bool) -> bool:
    """Words that leave an English sentence open whatever punctuation the recogniser put after them:
    a preposition (or an infinitive's "to") no wh-word takes, or two of them ("Who should I talk to
    about?"), a relative clause's verb with nothing after it ("dishes that are"), "tell me", a verb with
    its subject and no object ("Do you take?"), an auxiliary with its subject and no verb ("does the
    price?"), and in a caller's first words a short question ending on what it cannot point back to
    ("What's that?": whisper's completion of "What's the")."""
    last = words[-1]
    if words[-2:] == ["tell", "me"]:
        return True
    if last in _EN_STRANDED and (words[0] not in _EN_WH_OBJECT or len(words) > 1 and words[-2] in _EN_STRANDED):
        return True
    if last in _EN_COPULA and len(words) > 1 and words[-2] in _EN_RELATIVE:
        return True
    clause = _WORD.findall(([c for c in _CLAUSE.split(text) if c and c.strip()] or [text])[-1].lower())
    if len(clause) >= 2 and last in _EN_TRANSITIVE and clause[-2] in _EN_SUBJECT:
        return not _EN_FRONTED_OBJECT & set(clause)  # "How many do you take?", "anything I need to bring?"
    if len(clause) == 3 and clause[0] in _EN_AUXILIARY and clause[1] in _EN_DETERMINER:
        return True
    if len(clause) >= 3 and clause[-2] in _EN_AUXILIARY and last in _EN_SUBJECT:  # "What insurance do you?"
        return True
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return first and last in _EN_REFERENCE and len(sentences) == 1 and len(words) <= 6


def situation_only(text: str) -> bool:
    """Whether ``text`` is only a short statement of the caller's situation ("I'm over 65.", "My son is
    seven."), one sentence of at most eight words, no question: what they ask comes next."""
    stripped = text.strip()
    return (
        bool(_EN_SITUATION.match(stripped))
        and len(_WORD.findall(stripped)) <= 8
        and len([s for s in re.split(r"[.!?]+", stripped) if s.strip()]) == 1
    )


def should_wait(text: str, language: str = "en-US", complete: float | None = None, first: bool = False) -> bool:
    """Whether to give the caller :data:`HOLD_S` more before answering ``text``: its words stop
    mid-thought, they only greet or introduce the caller ("Hi, this is Alex from Acme.", the question
    still to come: answered alone, the introduction goes to a person as a question nobody can answer)
    or state the caller's situation (:func:`situation_only`), or the end-of-turn model (``complete``:
    its probability, None: no model) is sure the turn goes on. ``first``: the caller's first words of
    the call (see :func:`unfinished`)."""
    return (
        unfinished(text, language, first)
        or introduction_only(text)
        or situation_only(text)
        or (complete is not None and complete < INCOMPLETE_BELOW)
    )


def _is_hangul(word: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in word)


def backchannel(text: str) -> bool:
    """Whether ``text``, said over our reply, only acknowledges it ("mm-hm", "okay", "네", nothing clear)."""
    words = _WORD.findall(text.lower().replace("-", "").replace("all right", "alright"))
    return all(word in _BACKCHANNEL_WORDS or _HUM.fullmatch(word) for word in words)
