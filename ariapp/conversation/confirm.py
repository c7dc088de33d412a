""" "Did you mean …?": when the knowledge probably answers but the gate is not sure enough to say it.

A receptionist who half-heard a question does not guess and does not give up: they check. Below the
relevance gate's answering level (``knowledge.retrieval.relevance.ANSWER_AT``) the AI used to say it
was not sure, and most of those questions (paraphrases, words the recogniser got a little wrong) had
the right passage first. Now, when the likeliest passage reaches :data:`CONFIRM_AT` and has a topic
a caller can recognise (the FAQ question it answers, or the heading it sits under), the AI asks:

    caller: "What do you charge for an implant?"      (gate: 0.55, the implant FAQ first)
    AI:     "Just to check, are you asking: how much does a dental implant cost?"
    caller: "Yes."  -> the owner's answer          "No." -> not sure (or an operator, with HITL)

When the runner-up reaches the same level and names another topic, a caller who says no hears it
next, once ("Or are you asking: how do I cancel or change an appointment?"): two items that read
alike to the gate ("move my appointment to another day": the late-arrival rule, or the cancellation
rule) are most often first and second.

Nothing is said that the knowledge does not say: the check quotes the owner's own question or
heading, and the answer is spoken only after the caller agreed it is what they asked. A caller who
says "no, I meant …" is heard again as a new question. Measured on the evaluation sets
(``python -m knowledge.retrieval.evaluate --confirm-at``): held-out answered 54 % -> 79 % when the caller
confirms, and a near miss offered a topic is declined, so honesty on unknowns does not fall.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from knowledge.retrieval.relevance import Judgement, topic_of

#: The gate probability from which the likeliest passage is offered for confirmation (below the
#: answering level). 0.2 on the calibration split, where answered after a check stops rising: 56 % of
#: the questions it offers are answered by the offered passage (as at 0.3), answered after the check
#: 76 -> 81 % (English) and 75 -> 82 % (Korean) against 0.3, and 29 % of near misses get an offer
#: (21 % at 0.3), which the caller declines: one more "no", never a wrong answer.
CONFIRM_AT = 0.2

_ASK = {
    "en": {"question": "Just to check, are you asking: {topic}?", "heading": "Just to check, is it about {topic}?"},
    "ko": {
        "question": "확인차 여쭙니다. {topic}, 이 질문이신가요?",
        "heading": "확인차 여쭙니다. {topic}에 대해 물어보신 건가요?",
    },
}

#: The runner-up, after a no to the first check.
_ASK_AGAIN = {
    "en": {"question": "Or are you asking: {topic}?", "heading": "Or is it about {topic}?"},
    "ko": {"question": "아니면 {topic}, 이 질문이신가요?", "heading": "아니면 {topic}에 대해 물어보신 건가요?"},
}

_YES_EN = re.compile(
    r"^(yes|yeah|yep|yup|ya|yah|sure|right|correct|exactly|indeed|absolutely|affirmative|uh[- ]?huh|mm[- ]?hmm"
    r"|that'?s (right|it|correct)|that one)\b"
)
_NO_EN = re.compile(r"^(no|nope|nah|not really|not quite|wrong|incorrect|negative|that'?s not|it'?s not|i'?m not)\b")
# Korean replies end at a space or punctuation: "예약" (booking) and "응급" (emergency) are not a yes.
_END_KO = r"(?=$|[\s,.!?~…])"
_YES_KO = re.compile(
    r"^(네+|예|응|넵|맞아|맞아요|맞습니다|맞네요|그래요|그렇습니다|그렇죠|그거요|그거 맞아요)" + _END_KO
)
_NO_KO = re.compile(r"^(아니|아뇨|아닙니다|아니에요|아니요|아니오|틀려요|그게 아니라|그거 말고)" + _END_KO)
_LEADING = re.compile(r"^[\s,.!?~…\-]+|^(oh|um|uh|well|so|hmm|음|어|저)(?=$|[\s,.!?~…])[\s,.!?]*", re.IGNORECASE)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Offer:
    """The passage offered for confirmation and how it was put to the caller."""

    passage: Any
    question: str  # what the caller asked (answered with ``passage`` if they agree)
    probability: float
    text: str  # what the AI said
    topic: str = ""  # the topic it named
    #: The runner-up, offered when the caller says no to this one ("Or are you asking: …?")
    then: Offer | None = None


def offer_for(question: str, judgement: Judgement | None, lang: str, confirm_at: float = CONFIRM_AT) -> Offer | None:
    """The check to put to the caller (the likeliest passage, if likely enough and nameable), or None;
    with the runner-up to offer next, when it too reaches ``confirm_at`` and names another topic."""
    if confirm_at <= 0 or judgement is None:
        return None
    checks = [
        offer_of(passage, question, p, lang, again=n > 0, among=judgement.passages)
        for n, (passage, p) in enumerate(judgement.to_check(confirm_at))
    ]
    if not checks or checks[0] is None:
        return None
    then = checks[1] if len(checks) > 1 and checks[1] is not None and checks[1].topic != checks[0].topic else None
    return replace(checks[0], then=then)


def offer_of(
    passage: Any, question: str, probability: float, lang: str, *, again: bool = False, among: Sequence[Any] = ()
) -> Offer | None:
    """The check that offers ``passage`` for ``question``, or None when it has no topic a caller would
    recognise (no FAQ question or heading: a fact learned from a call). ``again``: the second check,
    after the caller said no to the first; ``among``: the passages judged with it (a heading one of
    them shares is said with ``passage``'s subject: "is it about prices: zirconia crown?")."""
    named = topic_of(passage, among)
    topic = _topic(named[1]) if named is not None else ""
    if not topic:
        return None
    assert named is not None
    asks = (_ASK_AGAIN if again else _ASK)["ko" if lang == "ko" else "en"]
    return Offer(passage, question, probability, asks[named[0]].format(topic=topic), topic)


def _topic(text: str) -> str:
    """An FAQ question or heading, put inside a sentence: trailing punctuation and markup off."""
    text = re.sub(r"[#*_`>]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip().rstrip("?？.!:：;")
    if not text or len(text) > 120:
        return ""
    if text[0].isupper() and not (len(text) > 1 and text[1].isupper()):
        text = text[0].lower() + text[1:]  # "How much …" -> "… asking: how much …"
    return text


def reply_to_offer(said: str, lang: str) -> tuple[bool | None, str]:
    """Whether the caller's reply agrees (True), declines (False) or neither (None), and what follows.

    The rest is what they said after the yes or no ("No, I meant crowns." -> "I meant crowns."),
    heard again as a question when it says enough.
    """
    text = said.strip()
    while True:
        stripped = _LEADING.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    lowered = text.lower()
    yes, no = (_YES_KO, _NO_KO) if lang == "ko" else (_YES_EN, _NO_EN)
    for pattern, verdict in ((no, False), (yes, True)):
        match = pattern.match(lowered)
        if match:
            rest = text[match.end() :].lstrip(" ,.!?~…-")
            return verdict, rest
    return None, text


def says_enough(text: str) -> bool:
    """A reply with a question of its own after the no (three words or more; Korean: two)."""
    words = _WORD.findall(text)
    return len(words) >= (2 if re.search(r"[\uac00-\ud7a3]", text) else 3)
