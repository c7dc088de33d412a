"""End of turn and backchannels on the synthetic caller's voice, offline (no calls): ``python -m bench endpointing``.

Every utterance is spoken by the offline voice with its default noise (each rendering differs, as a
caller's do), sent through G.711 with the 0.3 s of silence that ends a turn, and recognised by the
conversation's recogniser (``tiny.en``), as in a call:

* **fragments**: the first parts of the turn-taking set's paused questions (31: "Is there parking
  for", "Do you take, uh,"): held (the caller gets ``HOLD_S`` more) by the words alone, and by the
  words or the end-of-turn model;
* **questions**: complete questions (the 113 of the clinic's evaluation set and the 31 paused ones
  said whole): delayed by each rule;
* **backchannels** said over a reply (the set's 18: "mm-hm", "okay", "oh, I see"): taken for a
  backchannel on the first listen, and after listening again expecting one (``BACKCHANNEL_HINTS``);
* **interruptions**: the set's 17 and 12 short ones ("What about Sunday?", "Wait."): wrongly taken
  for a backchannel.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

EVAL = Path(__file__).resolve().parent.parent / "knowledge" / "retrieval" / "eval"
TURN_TAKING = EVAL / "turn_taking_en.jsonl"  # written for the turn-taking tests, before this bench
# Short cut-ins (the set's interruptions are mostly longer than a backchannel can be, 1.2 s)
SHORT_INTERRUPTIONS = [
    "Wait.",
    "No, stop.",
    "What about Sunday?",
    "How much?",
    "Sorry, what?",
    "Is it free?",
    "And Saturday?",
    "Hold on.",
    "Monday?",
    "No, no.",
    "Um, no.",
    "Mm, no, the other one.",
]


async def _run(renderings: int) -> dict:
    from aipbx.audio.g711 import ulaw_decode, ulaw_encode
    from aipbx.audio.resample import resample
    from aipbx.providers.local import WhisperSTT
    from aipbx.providers.local.turn import SmartTurn
    from ariapp.conversation.turns import BACKCHANNEL_HINTS, BACKCHANNEL_MAX_S, backchannel, should_wait, unfinished
    from softphone.voice import speech

    stt, model = WhisperSTT("tiny.en"), SmartTurn()
    await model.warmup()
    model_ms: list[float] = []

    async def phone(text: str) -> np.ndarray:
        pcm = await speech(text)
        pcm = ulaw_decode(ulaw_encode(np.concatenate([pcm, np.zeros(2400, dtype=np.int16)])))
        return resample(pcm, 8000, 16000)

    async def turn(text: str) -> tuple[bool, bool, str, float]:
        audio = await phone(text)
        heard = (await stt.transcribe(audio, "en")).text
        started = time.perf_counter()
        complete = await model.complete(audio)
        model_ms.append(1000 * (time.perf_counter() - started))
        return unfinished(heard, "en-US", True), should_wait(heard, "en-US", complete, True), heard, complete

    async def over_reply(text: str) -> tuple[bool, bool]:
        audio = await phone(text)
        if len(audio) / 16000 > BACKCHANNEL_MAX_S:
            return False, False  # too long for one: an interruption without asking the recogniser
        first = backchannel((await stt.transcribe(audio, "en")).text)
        again = first or backchannel((await stt.transcribe(audio, "en", BACKCHANNEL_HINTS["en"])).text)
        return first, again

    def lines(name: Path) -> list[dict]:
        return [json.loads(line) for line in name.read_text(encoding="utf-8").splitlines() if line.strip()]

    taking = lines(TURN_TAKING)
    paused = [r["parts"] for r in taking if r["type"] == "paused_question"]
    said_over = [r["text"] for r in taking if r["type"] == "backchannel"]
    cut_ins = [r["text"] for r in taking if r["type"] == "interruption"] + SHORT_INTERRUPTIONS
    questions = [r["q"] for r in lines(EVAL / "questions_clinic_en.jsonl")] + [" ".join(p) for p in paused]
    fragments = [await turn(p[0]) for p in paused * renderings]
    complete = [await turn(t) for t in questions]
    hums = [await over_reply(t) for t in said_over * renderings]
    interruptions = [await over_reply(t) for t in cut_ins]

    def count(rows: list, i: int) -> str:
        return f"{sum(r[i] for r in rows)}/{len(rows)}"

    def held_below(rows: list, level: float) -> str:
        return f"{sum(r[0] or r[3] < level for r in rows)}/{len(rows)}"

    levels = (0.05, 0.1, 0.2, 0.3, 0.5)

    return {
        "fragments_held": {"words": count(fragments, 0), "words_or_model": count(fragments, 1)},
        "questions_delayed": {"words": count(complete, 0), "words_or_model": count(complete, 1)},
        # the words, or the model below each level (INCOMPLETE_BELOW is one of them)
        "model_levels": {
            str(level): {
                "fragments_held": held_below(fragments, level),
                "questions_delayed": held_below(complete, level),
            }
            for level in levels
        },
        "fragments_missed": [f"{r[2]!r} {r[3]:.2f}" for r in fragments if not r[1]],
        "questions_delayed_by": [f"{r[2]!r} {r[3]:.2f}" for r in complete if r[1]],
        "backchannels_heard": {"first_listen": count(hums, 0), "listened_again": count(hums, 1)},
        "interruptions_taken_for_backchannels": {
            "first_listen": count(interruptions, 0),
            "listened_again": count(interruptions, 1),
        },
        "turn_model_ms": {
            "p50": round(float(np.percentile(model_ms, 50)), 1),
            "p95": round(float(np.percentile(model_ms, 95)), 1),
        },
    }


def run_endpointing(renderings: int = 2) -> dict:
    return asyncio.run(_run(renderings))
