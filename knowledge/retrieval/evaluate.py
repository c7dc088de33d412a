"""Does the AI answer what the knowledge says, and only that? Measured on the evaluation sets.

``python -m knowledge.retrieval.evaluate [--split heldout|calib|all] [--decide relevance|threshold]``
indexes each knowledge base of ``eval/`` (three businesses, English and Korean) the way the console
does (an item's text, and its FAQ question and heading as extra entries), asks every question, and
scores the decision the call would make:

* answerable questions: **answered** (with an item that answers it), **wrong** (with another item),
  or **unsure**;
* questions the knowledge does not answer (near misses, unrelated): **honest** (unsure) or **false**
  (an item was read out as if it answered).

``--confirm-at P`` also scores the "did you mean …?" check calls make below the answering level
(``ariapp.conversation.confirm``): an unsure question whose likeliest item reaches ``P`` and has a
question or heading is offered to the caller, who agrees when it is an item that answers (then it
counts **answered after a check**) and declines otherwise (still unsure, or honest); after a no, the
runner-up is offered the same way when it too reaches ``P`` and names another topic.

``threshold`` is the old rule (the best passage if its cosine reaches the model's threshold);
``relevance`` is the gate of :mod:`knowledge.retrieval.relevance`, as calls use it. The rule of the
data: ``heldout`` rows are never used to tune anything (see ``eval/README.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.retrieval.embeddings import Embedder
from knowledge.retrieval.retriever import Passage, Retriever, index_entries
from knowledge.retrieval.store import Item, MemoryStore

EVAL_DIR = Path(__file__).resolve().parent / "eval"
DOMAINS = ("clinic", "restaurant", "office")


@dataclass
class EvalSet:
    domain: str
    language: str
    items: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    #: What callers call the business (the extension's ``business`` setting in calls).
    business: str = ""

    @property
    def owner(self) -> str:
        return f"{self.domain}-{self.language}"


def load_sets(languages: Iterable[str] = ("en", "ko"), root: Path = EVAL_DIR) -> list[EvalSet]:
    sets = []
    for language in languages:
        for domain in DOMAINS:
            kb = yaml.safe_load((root / f"kb_{domain}_{language}.yaml").read_text(encoding="utf-8"))
            lines = (root / f"questions_{domain}_{language}.jsonl").read_text(encoding="utf-8").splitlines()
            questions = [json.loads(line) for line in lines if line.strip()]
            sets.append(EvalSet(domain, language, kb["items"], questions, kb.get("business", "")))
    return sets


def index_items(retriever: Retriever, owner: str, items: list[dict[str, Any]]) -> None:
    """Put ``items`` into ``owner``'s partition as ``knowledge.actions`` indexes approved items."""
    entries: list[tuple[str, str, dict[str, Any], str]] = []
    for item in items:
        metadata = {"item_id": item["id"], "question": item.get("question", ""), "heading": item.get("heading", "")}
        for entry_id, embedded in index_entries(item["id"], item["text"], metadata["question"], metadata["heading"]):
            entries.append((entry_id, embedded, metadata, item["text"]))
    vectors = retriever.embedder.embed([embedded for _, embedded, _, _ in entries], purpose="document")
    retriever.store.upsert(
        owner,
        [
            Item(entry_id, vector, text, metadata)
            for (entry_id, _, metadata, text), vector in zip(entries, vectors, strict=True)
        ],
    )


@dataclass
class Score:
    counts: Counter = field(default_factory=Counter)
    mistakes: list[str] = field(default_factory=list)

    def add(
        self, question: dict[str, Any], answer: Passage | None, label: str = "", offers: Sequence[Any] = ()
    ) -> None:
        """``offers``: the items "did you mean …?" checks would put to the caller, in turn, when ``answer``
        is None (the likeliest, then the runner-up after a no)."""
        wanted = {question["expect"], *question.get("also", [])} - {None}
        if wanted:
            outcome = "unsure" if answer is None else ("answered" if answer.id in wanted else "wrong")
        else:
            outcome = "honest" if answer is None else "false"
        self.counts[outcome] += 1
        for offer in offers if answer is None else ():
            self.counts["offered"] += 1
            self.counts["agreed" if offer.id in wanted else "declined"] += 1
            if offer.id in wanted:
                break
        if outcome in ("wrong", "false", "unsure"):
            said = "-" if answer is None else f"{answer.id} ({answer.score:.2f})"
            self.mistakes.append(f"{label}{outcome:7} {question['q']!r} -> {said} (expected {question['expect']})")

    def report(self) -> dict[str, Any]:
        c = self.counts
        answerable = c["answered"] + c["wrong"] + c["unsure"]
        unanswerable = c["honest"] + c["false"]
        report: dict[str, Any] = {
            "answerable": answerable,
            "answered": _pct(c["answered"], answerable),
            "wrong": _pct(c["wrong"], answerable),
            "unsure": _pct(c["unsure"], answerable),
            "unanswerable": unanswerable,
            "honest": _pct(c["honest"], unanswerable),
        }
        if c["offered"]:
            report["checked"] = {
                "offered": c["offered"],
                "answered_after_check": _pct(c["answered"] + c["agreed"], answerable),
                "declined": c["declined"],
            }
        return report


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def evaluate(
    decide: str = "relevance",
    split: str = "heldout",
    languages: Iterable[str] = ("en", "ko"),
    embedder: Embedder | None = None,
    confirm_at: float = 0.0,
) -> dict[str, Any]:
    """Score ``decide`` (``relevance``: the gate; ``threshold``: the cosine rule) on ``split``; with
    ``confirm_at``, the "did you mean …?" check too."""
    from knowledge.retrieval.embeddings import UsemEmbedder
    from knowledge.retrieval.relevance import RelevanceGate

    embedder = embedder or UsemEmbedder()
    gate = RelevanceGate(embedder) if decide == "relevance" else None
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=gate)
    scores: dict[str, Score] = {}
    total = Score()

    async def run() -> None:
        for eval_set in load_sets(languages):
            index_items(retriever, eval_set.owner, eval_set.items)
            score = scores.setdefault(f"{eval_set.domain}_{eval_set.language}", Score())
            for question in eval_set.questions:
                if split != "all" and question["split"] != split:
                    continue
                result = await retriever.search(eval_set.owner, question["q"])
                judgement = await retriever.judge(
                    question["q"], result.passages, eval_set.owner, business=eval_set.business
                )
                answer = judgement.passage
                offers = [passage for passage, _ in judgement.to_check(confirm_at)] if confirm_at > 0 else []
                score.add(question, answer, offers=offers)
                total.add(question, answer, label=f"[{eval_set.owner}] ", offers=offers)

    asyncio.run(run())
    return {
        "split": split,
        "all": total.report(),
        **{name: s.report() for name, s in scores.items()},
        "mistakes": total.mistakes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge.retrieval.evaluate")
    parser.add_argument("--split", default="heldout", choices=("heldout", "calib", "all"))
    parser.add_argument("--decide", default="relevance", choices=("relevance", "threshold"))
    parser.add_argument("--mistakes", action="store_true", help="list every wrong, false and unsure answer")
    parser.add_argument(
        "--confirm-at", type=float, default=0.0, help='score the "did you mean …?" check from this probability'
    )
    args = parser.parse_args(argv)
    report = evaluate(args.decide, args.split, confirm_at=args.confirm_at)
    if not args.mistakes:
        report.pop("mistakes")
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
