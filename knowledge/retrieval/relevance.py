"""Does a passage answer the caller's question, or only sound like it? The AI's honesty gate.

A cosine threshold alone let near misses through: asked the price of a treatment the knowledge does
not list, the nearest passage is another treatment's price, and it scores as high as a paraphrase
of a real answer. :func:`judge` looks at each of the best passages (the retriever's top five, one
per item) with several signals and decides which one answers — or that none does:

* ``sim``: the embedding similarity of question and passage (the retriever's score);
* ``coverage``: the share of the question's key words (:func:`terms.key_terms`) the passage
  contains, and ``soft``: the same with word embeddings, so "kids" finds "children";
* ``unknown``: the share of the question's key words that appear nowhere in this owner's knowledge
  ("root canal", "Invisalign", "Busan" in a clinic's knowledge that names none of them);
* ``type_missing``: the question asks for a price, a time, a place or a number the passage does not
  state; ``days_missing``: it names a weekday the passage does not cover;
* ``margin`` and ``rank``: how the passage compares with the others.

The features are combined by a logistic model fitted on the ``calib`` split of ``eval/`` (never the
``heldout`` one, which measures it: ``python -m knowledge.retrieval.evaluate``), and a passage is
used only when its probability reaches :data:`ANSWER_AT`, chosen for at least 95 % honest answers
on the calibration questions. Below it the caller hears that the AI is not sure (or a person is
asked). ``python -m knowledge.retrieval.train_relevance`` refits the constants below.

Status (measured on ``eval/``, 442 answerable and 150 unanswerable questions in six knowledge bases,
held-out split): the old cosine threshold answers 61.5 % right, 14.9 % wrong and is honest on only
65.3 % of the questions the knowledge does not answer; this gate is honest on 100 % (calibration 96 %) and
wrong on 1.8 %, but answers only 45 % — the lexical and word-embedding signals cannot yet tell a
paraphrase from a near miss well enough. Not yet wired into calls (the recognition/answering issue
continues); ``python -m knowledge.retrieval.evaluate`` measures both.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from knowledge.retrieval import terms

__all__ = ["ANSWER_AT", "FEATURES", "Judgement", "KnowledgeVocabulary", "features", "judge"]

FEATURES: Final = ("sim", "coverage", "soft", "unknown", "type_missing", "type_match", "days_missing", "margin",
                   "rank")
#: Logistic weights (intercept first, then :data:`FEATURES`), fitted by ``train_relevance`` on ``calib``.
WEIGHTS: Final = (-6.259, 2.311, 2.349, 5.999, 0.86, -1.294, 0.149, -2.747, 16.42, -0.356)
#: The probability from which the best passage is said to answer the question.
ANSWER_AT: Final = 0.76


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` decided: the passage to answer with (None: not sure) and why."""

    passage: Any | None
    probability: float
    candidates: list[tuple[Any, float, dict[str, float]]] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return self.passage is not None


class KnowledgeVocabulary:
    """The stemmed words of one owner's whole knowledge base (what the AI could possibly know about)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.stems: set[str] = set()
        self.text = " ".join(texts).lower()
        for text in texts:
            self.stems |= {terms.stem(w) for w in terms.words(text)}

    def knows(self, term: str) -> bool:
        return terms.covers(term, self.stems, self.text)


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


def _passage_text(passage: Any) -> str:
    metadata = getattr(passage, "metadata", None) or {}
    return " ".join(str(part) for part in (metadata.get("heading", ""), metadata.get("question", ""), passage.text)
                    if part)


def features(question: str, passages: Sequence[Any], vocabulary: KnowledgeVocabulary | None,
             embedder: Any | None) -> list[dict[str, float]]:
    """The features of each passage (best first) for ``question``; see the module docstring."""
    keys = terms.key_terms(question)
    wanted_types = terms.answer_types(question)
    asked_days = terms.weekdays(question)
    texts = [_passage_text(p) for p in passages]
    best = max((float(p.score) for p in passages), default=0.0)
    unknown = (sum(1 for k in keys if not vocabulary.knows(k)) / len(keys)) if keys and vocabulary else 0.0
    vectors: dict[str, np.ndarray] = {}
    if embedder is not None and keys:
        candidate_words = {terms.stem(w) for text in texts for w in terms.words(text)}
        vectors = _WORDS.get(embedder, [*keys, *candidate_words])
    rows = []
    for rank, (passage, text) in enumerate(zip(passages, texts, strict=True)):
        stems = {terms.stem(w) for w in terms.words(text)}
        covered = [k for k in keys if terms.covers(k, stems, text.lower())]
        soft = 0.0
        if keys and vectors:
            here = [vectors[s] for s in stems if s in vectors]
            matrix = np.stack(here) if here else None
            soft = float(np.mean([1.0 if k in covered else
                                  (float(np.max(matrix @ vectors[k])) if matrix is not None and k in vectors else 0.0)
                                  for k in keys]))
        stated = terms.passage_types(text)
        days = terms.weekdays(text)
        rows.append({
            "sim": float(passage.score),
            "coverage": len(covered) / len(keys) if keys else 0.0,
            "soft": soft,
            "unknown": unknown,
            "type_missing": 1.0 if wanted_types and not wanted_types & stated else 0.0,
            "type_match": 1.0 if wanted_types & stated else 0.0,
            "days_missing": 1.0 if asked_days and days and not asked_days <= days else 0.0,
            "margin": float(passage.score) - best,
            "rank": float(rank),
        })
    return rows


def probability(row: dict[str, float], weights: Sequence[float] = WEIGHTS) -> float:
    z = weights[0] + sum(w * row[name] for w, name in zip(weights[1:], FEATURES, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def judge(question: str, language: str, passages: Sequence[Any], embedder: Any | None = None,
          vocabulary: KnowledgeVocabulary | None = None, *, answer_at: float = ANSWER_AT,
          weights: Sequence[float] = WEIGHTS) -> Judgement:
    """The passage that answers ``question`` (the likeliest, if likely enough), or none.

    Args:
        question: What the caller asked (as recognised).
        language: The call's language (``en-US``, ``ko-KR``); the text rules cover both.
        passages: The retriever's best passages, one per item, best first.
        embedder: For word-level similarity (the retriever's); None skips the ``soft`` signal.
        vocabulary: The owner's whole knowledge; None skips the ``unknown`` signal.
    """
    if not passages or not question.strip():
        return Judgement(None, 0.0)
    rows = features(question, passages, vocabulary, embedder)
    scored = [(p, probability(row, weights), row) for p, row in zip(passages, rows, strict=True)]
    best = max(scored, key=lambda item: item[1])
    return Judgement(best[0] if best[1] >= answer_at else None, best[1], scored)
