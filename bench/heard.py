"""What recognition costs the answers, offline (no calls): ``python -m bench heard``.

Every question of the clinic's evaluation set (``knowledge/retrieval/eval``) is spoken by the
synthetic caller's voice (piper with its noise: each rendering differs), sent through G.711 and
recognised by the conversation's recogniser (``tiny.en``, told the callee's names as in a call); the
relevance gate then judges what was heard, as it judges the typed question. Reported per split:

* **typed**: the gate on the question as written (``python -m knowledge.retrieval.evaluate``'s figure);
* **heard**: the gate on what the recogniser heard;
* **heard again**: as calls do, a question nothing answers but a passage comes near (``RELISTEN_FROM_P``)
  is recognised again expecting the key words of its three nearest passages
  (``ariapp.conversation.deciding.expected_words``), and that hearing is kept only if a passage answers it.

Counts are answered / wrong / unsure for answerable questions, honest / false for the others; the
"did you mean …?" check calls make below the answering level is not counted here (see ``bench quality``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

EVAL = Path(__file__).resolve().parent.parent / "knowledge" / "retrieval" / "eval"
OWNER = "clinic-en"


def _outcome(question: dict[str, Any], passage: Any) -> str:
    wanted = {question["expect"], *question.get("also", [])} - {None}
    if wanted:
        return "unsure" if passage is None else ("answered" if passage.id in wanted else "wrong")
    return "honest" if passage is None else "false"


async def _run(renderings: int) -> dict:
    from aipbx.audio.g711 import ulaw_decode, ulaw_encode
    from aipbx.audio.resample import resample
    from aipbx.providers.local import WhisperSTT
    from ariapp.conversation.deciding import RELISTEN_FROM_P, expected_words
    from ariapp.conversation.turntaking import RELISTEN_NAMES
    from knowledge.retrieval import Retriever, UsemEmbedder
    from knowledge.retrieval.evaluate import index_items
    from knowledge.retrieval.relevance import RelevanceGate
    from knowledge.retrieval.store import MemoryStore
    from knowledge.retrieval.terms import proper_names
    from softphone.voice import speech

    items = yaml.safe_load((EVAL / "kb_clinic_en.yaml").read_text(encoding="utf-8"))["items"]
    lines = (EVAL / "questions_clinic_en.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    embedder = UsemEmbedder()
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, OWNER, items)
    names = proper_names([item["text"] for item in items])  # what deciding.prepare gives the recogniser
    stt = WhisperSTT("tiny.en")

    async def judged(text: str) -> tuple[list[Any], Any, float]:
        """The nearest passages, the one that answers (or None), the likeliest's probability."""
        result = await retriever.search(OWNER, text)
        judgement = await retriever.judge(text, result.passages, OWNER)
        likeliest = judgement.likeliest
        return result.passages, judgement.passage, likeliest[1] if likeliest is not None else 0.0

    report: dict[str, Any] = {}
    for split in ("calib", "heldout"):
        counts: dict[str, Counter] = {"typed": Counter(), "heard": Counter(), "heard_again": Counter()}
        recognition_ms: list[float] = []
        misses: list[str] = []
        relistens = 0
        for question in [q for q in questions if q["split"] == split] * renderings:
            pcm = await speech(question["q"])
            pcm = ulaw_decode(ulaw_encode(np.concatenate([pcm, np.zeros(2400, dtype=np.int16)])))
            audio = resample(pcm, 8000, 16000)
            started = time.perf_counter()
            heard = (await stt.transcribe(audio, "en", names)).text
            recognition_ms.append(1000 * (time.perf_counter() - started))
            counts["typed"][_outcome(question, (await judged(question["q"]))[1])] += 1
            candidates, answer, likeliest = await judged(heard)
            counts["heard"][_outcome(question, answer)] += 1
            again = heard
            if answer is None and candidates and likeliest >= RELISTEN_FROM_P:
                relistens += 1
                hints = [*names[:RELISTEN_NAMES], *expected_words(candidates)]
                second = (await stt.transcribe(audio, "en", hints)).text
                found = (await judged(second))[1] if second and second != heard else None
                if found is not None:
                    again, answer = second, found
            outcome = _outcome(question, answer)
            counts["heard_again"][outcome] += 1
            if outcome in ("wrong", "unsure", "false"):
                misses.append(f"{outcome:7} {question['q']!r} heard {again!r}")
        report[split] = {
            **{name: dict(sorted(c.items())) for name, c in counts.items()},
            "heard_again_times": relistens,
            "recognition_ms": {
                "p50": round(float(np.percentile(recognition_ms, 50)), 1),
                "p95": round(float(np.percentile(recognition_ms, 95)), 1),
            },
            "misses": misses,
        }
    return report


def run_heard(renderings: int = 2) -> dict:
    return asyncio.run(_run(renderings))
