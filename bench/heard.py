"""What recognition costs the answers, offline (no calls): ``python -m bench heard``.

Every question of the clinic's evaluation set (``knowledge/retrieval/eval``) is spoken by the
synthetic caller's voice (piper with its noise: each rendering differs), sent through G.711 and
recognised by the conversation's recogniser (``tiny.en``, told the callee's names as in a call); the
relevance gate then judges what was heard, as it judges the typed question. Reported per split:

* **typed**: the gate on the question as written (``python -m knowledge.retrieval.evaluate``'s figure);
* **heard**: the gate on what the recogniser heard;
* **heard again**: as calls do, a question nothing answers but a passage comes near (``RELISTEN_FROM_P``),
  or that says a name the knowledge does not have (``deciding.worth_hearing_again``), is recognised
  again, by the second listen's model (``AIPBX_STT_MODEL_RELISTEN``: whisper base), expecting the key
  words of its three nearest passages and their names spelt like it
  (``ariapp.conversation.deciding.expected_words``), and that hearing is kept only if a passage answers it;
* **checked at L**: and then, as calls do below the answering level, the "did you mean …?" check
  (``ariapp.conversation.confirm.offer_for``) offered from gate probability L (``CONFIRM_AT`` and the
  levels around it): a caller agrees when the offered passage is the one they asked about (answered),
  declines otherwise (unsure; honest for a question the knowledge does not answer). ``offered`` counts
  the checks: each one a caller hears is a turn longer than a direct answer;
* **respelled**: and then, as calls do when no passage comes near enough for a check, the question
  with the nearest passages' words that sound like words it said that they lack
  (``knowledge.retrieval.sounds.surest_respelling``: "Which four" -> "Which floor"), offered as a check
  when a passage answers it (at ``CONFIRM_AT``).

Counts are answered / wrong / unsure for answerable questions, honest / false for the others.
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
#: The check levels compared (``confirm.CONFIRM_AT`` is among them).
CHECK_LEVELS = (0.1, 0.2, 0.3)


def _outcome(question: dict[str, Any], passage: Any) -> str:
    wanted = {question["expect"], *question.get("also", [])} - {None}
    if wanted:
        return "unsure" if passage is None else ("answered" if passage.id in wanted else "wrong")
    return "honest" if passage is None else "false"


async def _run(renderings: int) -> dict:
    from aipbx.audio.g711 import ulaw_decode, ulaw_encode
    from aipbx.audio.resample import resample
    from aipbx.providers.factory import relisten_model
    from aipbx.providers.local import WhisperSTT
    from ariapp.conversation.confirm import CONFIRM_AT, offer_for
    from ariapp.conversation.deciding import expected_words, same_words, worth_hearing_again
    from ariapp.conversation.turntaking import relisten_hints
    from knowledge.retrieval import Retriever, UsemEmbedder
    from knowledge.retrieval.evaluate import index_items
    from knowledge.retrieval.relevance import RelevanceGate
    from knowledge.retrieval.sounds import surest_respelling
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
    again_stt = WhisperSTT(relisten_model({}, "en-US"))  # the second listen's model, as calls have it

    async def judged(text: str) -> tuple[list[Any], Any]:
        """The nearest passages and the gate's judgement of them."""
        result = await retriever.search(OWNER, text)
        return result.passages, await retriever.judge(text, result.passages, OWNER)

    def checked(question: dict[str, Any], asked: str, judgement: Any, level: float) -> tuple[str, bool]:
        """The outcome after the check at ``level`` (a caller agrees only to what they asked) and
        whether one was offered."""
        offer = offer_for(asked, judgement, "en", level) if judgement.passage is None else None
        if offer is None:
            return _outcome(question, judgement.passage), False
        wanted = {question["expect"], *question.get("also", [])} - {None}
        agreed = next((o.passage for o in (offer, offer.then) if o is not None and o.passage.id in wanted), None)
        return _outcome(question, agreed), True  # the likeliest, then the runner-up after a no

    async def respelled(
        question: dict[str, Any], asked: str, candidates: list[Any], judgement: Any
    ) -> tuple[str, bool]:
        """The outcome after the check at ``CONFIRM_AT`` and, failing one, the check of the respelled
        question the gate is surest of (as ``Deciding._sounds_like``), and whether one was offered."""
        outcome, offered = checked(question, asked, judgement, CONFIRM_AT)
        if judgement.passage is not None or offered or not candidates:
            return outcome, offered
        best = await surest_respelling(asked, candidates, judged_verdict)
        if best is None:
            return outcome, False
        wanted = {question["expect"], *question.get("also", [])} - {None}
        return _outcome(question, best[1].passage if best[1].passage.id in wanted else None), True

    async def judged_verdict(text: str) -> Any:
        return (await judged(text))[1]

    report: dict[str, Any] = {}
    for split in ("calib", "heldout"):
        counts: dict[str, Counter] = {"typed": Counter(), "heard": Counter(), "heard_again": Counter()}
        for level in CHECK_LEVELS:
            counts[f"checked_at_{level}"] = Counter()
        counts["respelled"] = Counter()
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
            counts["typed"][_outcome(question, (await judged(question["q"]))[1].passage)] += 1
            candidates, judgement = await judged(heard)
            counts["heard"][_outcome(question, judgement.passage)] += 1
            again, likeliest = heard, judgement.likeliest
            if worth_hearing_again(heard, judgement):
                relistens += 1
                hints = relisten_hints(names, expected_words(candidates, judgement.unknown_names))
                second = (await again_stt.transcribe(audio, "en", hints)).text
                if second and not same_words(second, heard):
                    found, verdict = await judged(second)
                    if verdict.passage is not None:
                        again, candidates, judgement = second, found, verdict
            outcome = _outcome(question, judgement.passage)
            counts["heard_again"][outcome] += 1
            for level in CHECK_LEVELS:
                after, offered = checked(question, again, judgement, level)
                counts[f"checked_at_{level}"][after] += 1
                counts[f"checked_at_{level}"]["offered"] += offered
            after, offered = await respelled(question, again, candidates, judgement)
            counts["respelled"][after] += 1
            counts["respelled"]["offered"] += offered
            if outcome in ("wrong", "unsure", "false"):
                offer = offer_for(again, judgement, "en", CONFIRM_AT) if judgement.passage is None else None
                check = f"; checked {offer.text!r} p={offer.probability:.2f}" if offer is not None else ""
                best = f"p={likeliest[1]:.2f} {likeliest[0].id}" if likeliest is not None else "nothing near"
                misses.append(f"{outcome:7} {question['q']!r} heard {again!r} ({best}{check})")
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
