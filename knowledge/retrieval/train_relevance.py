"""Fit the relevance gate's constants on the ``calib`` split: ``python -m knowledge.retrieval.train_relevance``.

Every calibration question is searched as a call would search it (the retriever's top five, one per
item); each passage becomes a row of :func:`relevance.features`, labelled 1 when it answers the
question. A logistic regression (numpy, L2) gives :data:`relevance.WEIGHTS`; the answering threshold
is the lowest that keeps at least 95 % of the calibration's unanswerable questions unanswered (after
the gate's rules before its model: unknown names, :func:`relevance.unknown_names`, and a passage that
answers nothing, :func:`relevance.answers_nothing`). The
held-out split is only scored, with the constants printed, never fitted on.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

from knowledge.retrieval import terms
from knowledge.retrieval.embeddings import UsemEmbedder
from knowledge.retrieval.evaluate import index_items, load_sets
from knowledge.retrieval.relevance import FEATURES, NEUTRAL, answers_nothing, features, passage_text, unknown_names
from knowledge.retrieval.rerank import E5Scorer
from knowledge.retrieval.retriever import Retriever
from knowledge.retrieval.store import MemoryStore

HONESTY: float = 0.95


def collect() -> list[dict[str, Any]]:
    """One record per question: its split, what answers it, and each candidate's features."""
    retriever = Retriever(UsemEmbedder(), MemoryStore(), top_k=5)
    scorer = E5Scorer()
    records: list[dict[str, Any]] = []

    async def run() -> None:
        for eval_set in load_sets():
            index_items(retriever, eval_set.owner, eval_set.items)
            for question in eval_set.questions:
                result = await retriever.search(eval_set.owner, question["q"])
                # judged as calls judge it (RelevanceGate.judge): without the business's own name
                asked = terms.without_business(terms.asked(question["q"]), eval_set.business)
                scores = scorer.scores(asked, [*NEUTRAL, *(passage_text(p) for p in result.passages)])
                rows = features(
                    asked,
                    result.passages,
                    retriever.embedder,
                    scores[len(NEUTRAL) :],
                    max(scores[: len(NEUTRAL)]),
                )
                wanted = {question["expect"], *question.get("also", [])} - {None}
                records.append(
                    {
                        "split": question["split"],
                        "wanted": wanted,
                        "set": eval_set.owner,
                        "ids": [p.id for p in result.passages],
                        "x": [[row[name] for name in FEATURES] for row in rows],
                        # the gate's rule before the model (a name no passage mentions); no owner lookup
                        # here: no calibration question names what only a passage outside its top five says
                        "unknown_name": bool(unknown_names(asked, result.passages)),
                        # and its rules for a passage that answers nothing (a limit, a booking's detail it lacks)
                        "answers_nothing": [answers_nothing(asked, passage_text(p)) for p in result.passages],
                    }
                )

    asyncio.run(run())
    return records


def fit(records: list[dict[str, Any]], l2: float = 1e-2, iterations: int = 60) -> np.ndarray:
    """Logistic regression by Newton's method (a few hundred rows: exact and quick), L2 on the weights."""
    x = np.array([row for r in records for row in r["x"]], dtype=np.float64)
    y = np.array([1.0 if i in r["wanted"] else 0.0 for r in records for i in r["ids"]])
    x = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(x.shape[1])
    penalty = l2 * np.diag(np.r_[0.0, np.ones(x.shape[1] - 1)])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def decide(records: list[dict[str, Any]], w: np.ndarray, at: float) -> dict[str, float]:
    answered = wrong = unsure = honest = false = 0
    for r in records:
        best_id, best_p = None, -1.0
        for i, row, nothing in zip(r["ids"], r["x"], r["answers_nothing"], strict=True):
            p = 0.0 if nothing else 1.0 / (1.0 + np.exp(-(w[0] + np.dot(w[1:], row))))
            if p > best_p:
                best_id, best_p = i, p
        said = best_id if best_p >= at and not r.get("unknown_name") else None
        if r["wanted"]:
            answered += said in r["wanted"]
            wrong += said is not None and said not in r["wanted"]
            unsure += said is None
        else:
            honest += said is None
            false += said is not None
    n1, n0 = answered + wrong + unsure, honest + false
    return {
        "answered": round(answered / n1, 3),
        "wrong": round(wrong / n1, 3),
        "unsure": round(unsure / n1, 3),
        "honest": round(honest / n0, 3),
        "answerable": n1,
        "unanswerable": n0,
    }


def main() -> int:
    records = collect()
    calib = [r for r in records if r["split"] == "calib"]
    heldout = [r for r in records if r["split"] == "heldout"]
    w = fit(calib)
    at = next(float(t) for t in np.arange(0.05, 1.0, 0.01) if decide(calib, w, float(t))["honest"] >= HONESTY)
    json.dump(
        {
            "weights": [round(float(v), 3) for v in w],
            "features": FEATURES,
            "answer_at": round(float(at), 2),
            "calib": decide(calib, w, at),
            "heldout": decide(heldout, w, at),
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
