"""Deciding what to do with a heard question: answer it from the callee's knowledge, check "did you
mean …?", or ask a person.

:class:`Deciding` searches the callee's knowledge (started ahead at the caller's pause when it can),
lets the relevance gate say which passages answer the question — only those are ever spoken — and
returns an :class:`~ariapp.conversation.frames.Answer` or an
:class:`~ariapp.conversation.frames.AskPerson`. It keeps the one open "did you mean …?" offer, whose
reply ("yes", "no, I meant …") the next question is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any, Protocol

import contract
from ariapp.conversation.confirm import Offer, offer_for, offer_of, reply_to_offer, says_enough
from ariapp.conversation.context import CallContext
from ariapp.conversation.frames import Answer, AskPerson, Heard
from ariapp.conversation.hitl import LOW_CONFIDENCE, Trigger, asks_for_person, hitl_trigger
from knowledge.retrieval import terms
from knowledge.retrieval.relevance import passage_text
from knowledge.retrieval.sounds import surest_respelling
from knowledge.retrieval.terms import proper_names

log = logging.getLogger(__name__)

__all__ = ["Deciding", "Retrieval", "expected_words", "same_words", "worth_hearing_again"]

#: A second listen expects the key words of this many of the nearest passages, at most this many words.
RELISTEN_FROM = 3
RELISTEN_WORDS = 12
#: ... and only for a question whose likeliest passage reached this gate probability: offline (bench
#: heard), of 159 unsure hearings 73 reach it and 7 of the 10 recovered do; of the 65 unknown
#: questions' hearings, 10 (the cost of a second listen, ~0.25 s, is paid by near questions only).
RELISTEN_FROM_P = 0.2
#: A name the question says that the knowledge does not have is heard again expecting this many of the
#: nearest passages' names that are spelt most like it ("Sanson Pay" -> "Samsung Pay").
RELISTEN_LIKE_NAMES = 3


class Retrieval(Protocol):
    """What the conversation needs from the knowledge base (``knowledge.retrieval.Retriever``):
    ``search`` returns a result whose ``passages`` have ``text``, ``score`` and, optionally,
    ``metadata`` with the knowledge ``item_id`` (reported to the console); ``judge`` says which of
    them answer the question (a ``Judgement``: ``answering``, ``probability``, ``answer_at``) —
    only those are ever spoken; with ``owner`` it may look the question's names up in the owner's
    knowledge, and ``business`` (the callee's business name) is not a topic the answer must cover."""

    async def search(self, owner: str, query: str) -> Any: ...

    async def judge(self, question: str, passages: Any, owner: str | None = None, *, business: str = "") -> Any: ...


class Deciding:
    """One call's decisions (see the module docstring)."""

    def __init__(self, context: CallContext, retriever: Retrieval | None) -> None:
        self.context = context
        self.retriever = retriever
        self._ahead: tuple[str, asyncio.Task[tuple[list[Any], Any | None]]] | None = None  # a pause's search
        self.offered: Offer | None = None  # "did you mean …?" asked: the caller's next words answer it
        self.offers = 0

    async def prepare(self) -> list[str]:
        """Get the callee's knowledge ready for the first question; the names in it ("Dr. Minsu
        Park", "Chuseok") for the recogniser, so a caller who says them is heard, not "men's who park"."""
        prepare = getattr(self.retriever, "prepare", None)
        if prepare is None:
            return []
        owner = self.context.config.owner_key
        try:
            passages = await prepare(owner)
        except Exception as exc:  # noqa: BLE001 - only a head start: the first question searches as usual
            log.warning("could not prepare the knowledge of %s: %r", owner, exc)
            return []
        return proper_names([passage.text for passage in passages])

    def ahead(self, text: str) -> None:
        """Search for ``text`` (a pause's transcript) now: when the caller said nothing more, it is
        the question. One search ahead at a time, like one speculative recognition."""
        if self.retriever is None or (self._ahead is not None and not self._ahead[1].done()):
            return
        self._ahead = (text, self.context.tasks.spawn(self._retrieve(text), "search-ahead"))

    async def decide(self, heard: Heard) -> Answer | AskPerson:
        """What to do with ``heard`` (logged on its turn and told to the console as a retrieval)."""
        config, turn = self.context.config, heard.turn
        offered, self.offered = self.offered, None
        agreed, rest = reply_to_offer(heard.text, config.lang) if offered else (None, heard.text)
        if agreed is None or says_enough(rest):
            # a question of its own ("No, I meant the crowns.", "Yes, and after two hours?"): the
            # gate judges it; a yes with more to it is not a yes to the passage alone
            offered = None
            asked = heard.text if agreed is None else rest
            with heard.marks.waiting_on_model():
                candidates, judgement = await self._retrieve_for(asked)
            heard.marks.mark("retrieval")
            if agreed is None and candidates and not (judgement is not None and judgement.answering):
                asked, candidates, judgement = await self._heard_again(heard, asked, candidates, judgement)
            answering = judgement.answering if judgement is not None else []
            confidence = float(judgement.probability) if judgement is not None and candidates else None
            turn.retrieved = _retrieved(candidates, judgement)
        else:  # the caller answered "did you mean …?": yes, that passage; no, nothing
            assert offered is not None
            asked, candidates, judgement = offered.question, [offered.passage], None
            answering = [offered.passage] if agreed else []
            confidence = offered.probability
            turn.retrieved = [{**_retrieved(candidates, None)[0], "p": round(confidence, 3), "used": agreed}]
        self.context.publish(
            contract.Retrieval(
                question=asked,
                results=turn.retrieved,
                t=turn.t,
                confidence=None if confidence is None else round(confidence, 3),
            )
        )
        offer = None
        if offered is None:
            trigger = self._human_needed(asked, confidence, judgement)
            if not answering and (trigger is None or trigger.reason == LOW_CONFIDENCE):
                offer = offer_for(asked, judgement, config.lang, config.confirm_at)
                if offer is None and config.confirm_at > 0 and candidates:
                    offer = await self._sounds_like(heard, asked, candidates)
            if offer is not None:
                trigger = None  # check with the caller before asking a person
        elif not agreed and offered.then is not None:
            offer, trigger = offered.then, None  # "No." to the likeliest: the runner-up, once
        else:
            trigger = None if agreed else self._human_needed(asked, None, None)
        if trigger is not None:
            return AskPerson(asked, trigger, confidence)
        return Answer(asked, list(answering), confidence, offer)

    async def _heard_again(
        self, heard: Heard, asked: str, candidates: list[Any], judgement: Any | None
    ) -> tuple[str, list[Any], Any | None]:
        """Nothing answers what was heard: listen to the question again expecting the words of the
        passages it came nearest ("Do you take Kakal Pay?" is "Do you take Kakao Pay?" once the
        recogniser expects "kakao"), and take that hearing only if a passage answers it.

        The recogniser's mistakes on a caller's words are most of the answerable questions the AI
        is unsure of (docs/performance.md); a question nothing answers either way stays as first
        heard, so a near miss gains nothing from being heard to the knowledge's tune. One more
        recognition and search, for unsure questions with a passage near enough
        (:data:`RELISTEN_FROM_P`) or a name the knowledge does not have, which is most often a name
        it does have, misheard ("Sanson Pay", "Game Noms Station", "Dr. Lee'd"): those are heard again
        expecting the nearest passages' names spelt most like it.
        """
        if heard.relisten is None or judgement is None or not worth_hearing_again(asked, judgement):
            return asked, candidates, judgement
        words = expected_words(candidates, judgement.unknown_names)
        try:
            with heard.marks.waiting_on_model():
                again = (await heard.relisten(words)).strip()
                if not again or same_words(again, asked):
                    return asked, candidates, judgement
                found, verdict = await self._retrieve(again)
        except Exception as exc:  # noqa: BLE001 - a second listen must never cost the caller the first
            log.warning("could not hear the question again: %r", exc)
            return asked, candidates, judgement
        finally:
            heard.marks.mark("heard_again")
        if verdict is None or not verdict.answering:
            return asked, candidates, judgement
        log.info("heard again: %r as %r", asked, again)
        turn = heard.turn
        turn.text = again
        self.context.publish(contract.Transcript(speaker="caller", text=again, final=True, t=turn.t, replaces=turn.t))
        return again, found, verdict

    async def _sounds_like(self, heard: Heard, asked: str, candidates: list[Any]) -> Offer | None:
        """Nothing answers the question even heard again, and no passage came near enough to offer:
        try it with the words of the nearest passages that sound like words it said that they lack
        ("Which four are you on?" -> "Which floor are you on?"; :func:`~knowledge.retrieval.sounds.
        surest_respelling`). Of the respellings a passage answers, the one the gate is surest of is offered
        as a check, never answered outright: the caller says whether it is what they asked.
        """

        async def judged(text: str) -> Any | None:
            return (await self._retrieve(text))[1]

        best = None
        try:
            with heard.marks.waiting_on_model():
                best = await surest_respelling(asked, candidates, judged)
        except Exception as exc:  # noqa: BLE001 - a guess must never cost the caller the answer they get now
            log.warning("could not respell %r: %r", asked, exc)
        finally:
            heard.marks.mark("respelled")
        if best is None:
            return None
        guess, verdict = best
        log.info("heard %r; sounds like %r: checking with the caller", asked, guess)
        config = self.context.config
        return offer_of(verdict.passage, guess, float(verdict.probability), config.lang, among=verdict.passages)

    def asked(self, offer: Offer) -> None:
        """The caller heard ``offer``'s "did you mean …?": their next words answer it."""
        self.offered = offer
        self.offers += 1

    def _human_needed(self, question: str, confidence: float | None, judgement: Any | None) -> Trigger | None:
        if self.context.desk is None:
            return None
        floor = float(judgement.answer_at) if judgement is not None else 1.0
        return hitl_trigger(question, confidence, floor, self.context.hitl)

    async def _retrieve_for(self, question: str) -> tuple[list[Any], Any | None]:
        """The search for ``question``: the one started at the pause if it was for the same words."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == question:
            return await ahead[1]
        if ahead is not None:
            ahead[1].cancel()
        return await self._retrieve(question)

    async def _retrieve(self, question: str) -> tuple[list[Any], Any | None]:
        """The callee's passages nearest the question (best first) and the verdict on which answer it."""
        if self.retriever is None:
            return [], None
        try:
            config = self.context.config
            owner = config.owner_key
            result = await self.retriever.search(owner, question)
            # "Is Smile Tree open on Saturdays?" asks about Saturdays: the callee's own name is no topic
            judgement = await self.retriever.judge(question, result.passages, owner, business=config.business)
            return list(result.passages), judgement
        except Exception as exc:  # the knowledge base down must not take the call down
            log.warning("knowledge search failed, answering without it: %r", exc)
            return [], None


def worth_hearing_again(asked: str, judgement: Any | None) -> bool:
    """Whether an unanswered question is heard again (see :meth:`Deciding._heard_again`): its likeliest
    passage came near enough, or it says a name the knowledge does not have; never a caller asking
    for a person."""
    if judgement is None or judgement.passage is not None or asks_for_person(asked):
        return False
    likeliest = judgement.likeliest
    return bool(getattr(judgement, "unknown_names", ())) or (likeliest is not None and likeliest[1] >= RELISTEN_FROM_P)


def same_words(a: str, b: str) -> bool:
    """Whether two hearings say the same words, whatever their case and punctuation: a second listen
    that only lowercased "Smile Tree Dental" must not be judged again (the gate reads capitals as names,
    and the same question would get another verdict)."""
    return terms.words(a) == terms.words(b)


def expected_words(candidates: list[Any], unknown_names: Sequence[str] = ()) -> list[str]:
    """What a second listen expects: for names the question said that the knowledge lacks, first the
    nearest passages' names spelt most like them; then the key words of the nearest passages (best first)."""
    nearest = candidates[:RELISTEN_FROM]
    texts = [passage_text(p) for p in nearest]
    like: list[str] = []
    if unknown_names:  # the passage's own sentences, its FAQ question and heading each on their own
        metadata = [getattr(p, "metadata", None) or {} for p in nearest]
        names = proper_names(
            [p.text for p in nearest] + [str(m.get(k) or "") for m in metadata for k in ("question", "heading")]
        )
        alike = {n: max(_alike(n, u) for u in unknown_names) for n in names}
        like = sorted((n for n in names if alike[n] > 0), key=lambda n: -alike[n])[:RELISTEN_LIKE_NAMES]
    return [*like, *terms.key_terms(" ".join(texts))][:RELISTEN_WORDS]


def _alike(name: str, heard: str) -> float:
    """How much ``name`` (a knowledge name, "Samsung Pay") is spelt like ``heard`` (a stemmed word
    the question said, "sanson"): the best letter match of one of its words or two run together."""
    parts = [terms.stem(w) for w in terms.words(name)]
    forms = [*parts, *(a + b for a, b in zip(parts, parts[1:], strict=False))]
    return max((SequenceMatcher(None, heard, form).ratio() for form in forms), default=0.0)


def _retrieved(candidates: list[Any], judgement: Any | None) -> list[dict[str, Any]]:
    """What the console shows of a search: each passage, its score, and the gate's verdict on it."""
    verdict = {id(c[0]): c[1] for c in (judgement.candidates if judgement is not None else [])}
    answering = {id(p) for p in (judgement.answering if judgement is not None else [])}
    return [
        {
            "text": p.text[:200],
            "score": round(float(p.score), 3),
            "item_id": (getattr(p, "metadata", None) or {}).get("item_id"),
            **({"p": round(verdict[id(p)], 3)} if id(p) in verdict else {}),
            "used": id(p) in answering,
        }
        for p in candidates
    ]
