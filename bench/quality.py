"""Conversation quality over real calls: does the AI answer right, stay honest, let a caller finish?

``python -m bench quality`` starts a scratch instance (Asterisk, Chroma, the ARI app, offline
providers, no operators), gives extension 1004 the evaluation clinic's knowledge
(``knowledge/retrieval/eval/kb_clinic_en.yaml``, indexed as the console indexes it, and the clinic's
name as the extension's ``business`` setting) and calls it
from an independent SIP phone with synthesised speech, one question per call:

* **answered**: the held-out paraphrases (78) the knowledge answers; right when the reply heard at the phone
  (recognised by whisper base, not the app's model, told the clinic's names as a caller knows them)
  contains most of the expected item's content words.
  When the AI checks first ("Just to check, are you asking: …?", ``ariapp.conversation.confirm``) the
  caller says "Yes." if the topic it heard is the expected item's question or heading (most of its
  content words), else "No." (and the same to the runner-up's "Or is it about …?" after a no), and
  only the last reply is judged; ``answered_directly`` counts
  the answers without a check;
* **honest**: the held-out questions (36) the knowledge does not answer (near misses); honest when the reply
  says it is not sure and reads out no item (a check is always declined: no item answers);
* **false cut-offs**: questions with a 0.5-1.0 s pause inside ("..., um [pause] ..."): the AI's
  voice heard before the caller finished (15: the four of the first runs, 0.8 s, and the clinic's 11
  of the turn-taking set, ``turn_taking_en.jsonl``);
* **backchannel false stops**: "okay" / "mm-hm" / "mm" (8) said ~1 s into a long answer (the parking passage):
  the answer did not go on, or what followed was a new reply (the backchannel taken as a question);
* **latency**: the caller's last sound -> the reply's first sound, at the phone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from softphone.analysis import first_sound_at, last_sound_at, silent_tail, speech_seconds
from stack.instance import Instance, scratch_config

EVAL = Path(__file__).resolve().parent.parent / "knowledge" / "retrieval" / "eval"
REPO_EXTENSIONS = Path(__file__).resolve().parent.parent / "asterisk" / "extensions.yaml"
RATE = 8000
PAUSED = [  # (first part, second part, pause): a thought with a pause inside
    ("So I was wondering, um", "what time do you close on Saturdays?", 0.8),
    ("Could you tell me, uh", "how much a crown costs?", 0.8),
    ("I wanted to ask about the", "parking, is there any?", 0.8),
    ("My son is seven and", "do you see children?", 0.8),
]
BACKCHANNELS = ["Okay.", "Mm-hmm.", "Yeah.", "Okay.", "Uh-huh.", "Mm.", "Mhm.", "Right."]
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "the a an and or of to for in on at is are we our you your it its be by with from as this that "
    "which there their can will not no".split()
)


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


#: Words every question has: a check is the caller's topic by what it is about, not by its "how".
_QUESTION_WORDS = frozenset("how what when where who why does did get have has could would should".split())


def _stems(text: str) -> set[str]:
    """:func:`_content` with a plural's "s" off and question words left out: a caller hearing "is it
    about our dentist?" for "our dentists" recognises the topic as theirs, and one who asked how to
    book does not take "how do I get there by subway?" for it."""
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in _content(text) if w not in _QUESTION_WORDS}


def _paused() -> list[tuple[str, str, float]]:
    """The four above, then the clinic's paused questions of the turn-taking set (0.5-1.0 s pauses)."""
    rows = [json.loads(line) for line in (EVAL / "turn_taking_en.jsonl").read_text().splitlines() if line.strip()]
    clinic = [r for r in rows if r["type"] == "paused_question" and r.get("domain") == "clinic"]
    return PAUSED + [(r["parts"][0], r["parts"][1], float(r["pause_s"])) for r in clinic]


def _questions(limit_answerable: int | None, limit_unknown: int | None) -> tuple[dict, list[dict], list[dict]]:
    kb = yaml.safe_load((EVAL / "kb_clinic_en.yaml").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (EVAL / "questions_clinic_en.jsonl").read_text().splitlines() if line]
    held = [r for r in rows if r["split"] == "heldout"]
    answerable = [r for r in held if r["expect"]][:limit_answerable]
    unknown = [r for r in held if not r["expect"]][:limit_unknown]
    return kb, answerable, unknown


def _extensions_for(business: str, base: Path) -> Path:
    """The repository's extensions with 1004 named as the clinic's line (its ``business`` setting)."""
    document = yaml.safe_load((REPO_EXTENSIONS).read_text(encoding="utf-8"))
    for ext in document["extensions"]:
        if ext["ext"] == "1004":
            ext["business"] = business
    path = base / "extensions.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


async def _seed(cfg, items: list[dict]) -> None:
    from knowledge.retrieval import ChromaStore, Retriever, UsemEmbedder
    from knowledge.retrieval.evaluate import index_items

    store = ChromaStore("127.0.0.1", cfg.chroma_port, prefix=f"kb{cfg.name}", token=cfg.chroma_token)
    index_items(Retriever(UsemEmbedder(), store), "1004", items)


async def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def _cdr_lines(cfg) -> list[dict]:
    lines: list[dict] = []
    for path in sorted(cfg.cdr_dir.glob("cdr-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


async def _app_heard(cfg, before: int) -> str:
    """What the ARI app heard and did in the call after the first ``before`` CDR lines: each caller
    turn as it recognised it, with its marks (turn_complete, turn_hold, unsure_hold), from the call's metadata."""
    from tests.integration.audio_checks import Recordings

    if not await _wait(lambda: len(_cdr_lines(cfg)) > before, 15):
        return "(no CDR line)"
    call_id = _cdr_lines(cfg)[before]["call_id"]
    try:
        turns = Recordings(cfg).metadata(call_id)["turns"]
    except (OSError, KeyError, ValueError) as exc:
        return f"(no metadata: {exc!r})"
    keep = ("turn_complete", "turn_hold", "unsure_hold")
    return " | ".join(
        f"{t['text']!r} { ({k: v for k, v in t.get('latency_ms', {}).items() if k in keep}) }"
        for t in turns
        if t["speaker"] == "caller"
    )


class _Caller:
    def __init__(self, cfg) -> None:
        from softphone import Phone

        self.phone = Phone(
            ext="1001", password=cfg.sip_password("1001"), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1"
        )

    async def __aenter__(self) -> _Caller:
        await self.phone.start()
        await self.phone.register(expires=600)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.phone.unregister()
        await self.phone.close()

    async def ask(self, audio: np.ndarray, backchannel: np.ndarray | None = None, follow_up=None) -> dict:
        """One call: greeting, the question, the reply (with a backchannel 0.6 s into it).

        ``follow_up(reply_pcm)``: what the caller says after the reply (None: nothing), and after the
        reply to that (a second check), up to :data:`FOLLOW_UPS` times; the last reply is ``after_follow_up``.
        """
        call = await self.phone.call("1004", timeout=15)
        try:
            await _wait(lambda: speech_seconds(call.received_audio()) > 2.0, 20)
            await _wait(lambda: silent_tail(call.received_audio(), 1.0), 30)
            asked_at = len(call.received_audio())
            await call.play_and_wait(audio)
            said_end = last_sound_at(call.sent_audio())
            during = speech_seconds(call.received_audio()[asked_at : asked_at + len(audio)])
            answered = await _wait(lambda: speech_seconds(call.received_audio()[asked_at + len(audio) :]) > 0.5, 25)
            went_on, after = None, None
            if answered and backchannel is not None:
                await asyncio.sleep(0.4)
                await call.play_and_wait(backchannel)
                after = len(call.received_audio())
                went_on = await _wait(lambda: speech_seconds(call.received_audio()[after:]) > 0.8, 4.0)
            await _wait(lambda: silent_tail(call.received_audio(), 3.0), 40)
            received = call.received_audio()
            first = first_sound_at(received, after=said_end) if answered else None
            more = await follow_up(received[asked_at + len(audio) :]) if answered and follow_up else None
            after_follow_up = None
            for _ in range(FOLLOW_UPS):  # a check, and the runner-up's after a no
                if more is None:
                    break
                followed_at = len(call.received_audio())
                await call.play_and_wait(more)
                start = followed_at + len(more)
                await _wait(lambda start=start: speech_seconds(call.received_audio()[start:]) > 0.5, 25)
                await _wait(lambda: silent_tail(call.received_audio(), 3.0), 40)
                after_follow_up = call.received_audio()[start:]
                more = await follow_up(after_follow_up)
            return {
                "pcm": received[asked_at:],
                "during_question_s": during,
                "latency_s": None if first is None else first - said_end,
                "went_on": went_on,
                "after_backchannel": None if after is None else received[after:],
                "after_follow_up": after_follow_up,
            }
        finally:
            await call.hangup()
            await asyncio.sleep(0.3)


#: What a check sounds like: "Just to check, are you asking: …?", then "Or is it about …?" after a no.
CHECK = re.compile(r"\bjust\W+(to|a)\W+check\b|^\W*or\W+(are\W+you\W+asking|is\W+it\W+about)\b", re.I)
#: Replies the caller answers at most, one per check.
FOLLOW_UPS = 3


async def _run(cfg, answerable: list[dict], unknown: list[dict], items: dict[str, dict]) -> dict:
    from knowledge.retrieval import terms
    from knowledge.retrieval.relevance import subject_of
    from softphone.voice import speech
    from tests.integration.audio_checks import transcribe

    await _seed(cfg, list(items.values()))
    # The judge is a listener who knows the clinic's names ("Smile Tree", "Seocho-daero"), as its
    # callers do: without them whisper heard a right address as "hammett building, 45 satcho"
    names = terms.proper_names([f"{i.get('heading', '')}. {i['text']}" for i in items.values()])

    async def listen(pcm: np.ndarray) -> str:
        return await transcribe(pcm, RATE, "base", names)

    right = direct = honest = cutoffs = false_stops = 0
    checks = {"offered": 0, "agreed": 0, "declined": 0}
    latencies: list[float] = []
    mistakes: list[str] = []

    # how a caller recognises each item in a check: its FAQ question and heading, and what the fact is
    # about, which a check under a shared heading names ("is it about prices: zirconia crown?")
    named = {
        i: _stems(f"{item.get('question', '')} {item.get('heading', '')} {subject_of(item['text']) or ''}")
        for i, item in items.items()
    }

    def caller_who_asked(wanted_ids: set[str]):
        """A caller answering "did you mean …?": yes when the check names what they asked about, more
        than it names any other item ("how do I cancel or change an appointment?" is no to a caller
        asking how to make one, "is it about prices: gold inlay?" to one asking about a crown)."""
        topics = [_stems(f"{items[i].get('question', '')} {items[i].get('heading', '')}") for i in wanted_ids]

        def names_another(said: set[str]) -> bool:
            ours = max((len(named[i] & said) for i in wanted_ids if i in named), default=0)
            return any(len(t & said) > ours for i, t in named.items() if i not in wanted_ids)

        async def follow_up(reply: np.ndarray) -> np.ndarray | None:
            heard = await listen(reply)
            if not CHECK.search(heard):
                return None
            said = _stems(heard)
            agree = any(t and len(t & said) >= max(1, len(t) // 2) for t in topics) and not names_another(said)
            checks["offered"] += 1
            checks["agreed" if agree else "declined"] += 1
            if topics and not agree:
                mistakes.append(f"declined the check {heard!r} (asked about {sorted(wanted_ids)})")
            return await speech("Yes." if agree else "No.")

        return follow_up

    def answer_of(result: dict) -> np.ndarray:
        """What is judged: the reply, or after a check the reply to the caller's yes or no."""
        return result["pcm"] if result["after_follow_up"] is None else result["after_follow_up"]

    async with _Caller(cfg) as caller:
        for row in answerable:
            wanted_ids = {row["expect"], *row.get("also", [])}
            before = len(_cdr_lines(cfg))
            result = await caller.ask(await speech(row["q"]), follow_up=caller_who_asked(wanted_ids))
            heard = await listen(answer_of(result))
            wanted = [_content(items[i]["text"]) for i in wanted_ids]
            ok = any(len(w & _content(heard)) >= max(1, len(w) // 2) for w in wanted)
            right += ok
            direct += ok and result["after_follow_up"] is None
            if result["latency_s"] is not None:
                latencies.append(result["latency_s"])
            if not ok:
                mistakes.append(f"answerable {row['q']!r} -> {heard!r}; app heard {await _app_heard(cfg, before)}")
        for row in unknown:
            before = len(_cdr_lines(cfg))
            result = await caller.ask(await speech(row["q"]), follow_up=caller_who_asked(set()))
            heard = await listen(answer_of(result))
            said_an_item = any(len(_content(i["text"]) & _content(heard)) >= 4 for i in items.values())
            ok = "not sure" in heard and not said_an_item
            honest += ok
            if not ok:
                mistakes.append(f"unknown {row['q']!r} -> {heard!r}; app heard {await _app_heard(cfg, before)}")
        paused = _paused()
        for first, rest, pause_s in paused:
            a, b = await speech(first), await speech(rest)
            before = len(_cdr_lines(cfg))
            result = await caller.ask(np.concatenate([a, np.zeros(int(pause_s * RATE), dtype=a.dtype), b]))
            cut = result["during_question_s"] > 0.2
            cutoffs += cut
            if cut:
                mistakes.append(f"cut off {first!r} ... {rest!r}; app heard {await _app_heard(cfg, before)}")
        # A question the gate answers with a long passage (parking: ~9 s), so there is a reply to go on
        question = await speech("Is there parking?")
        for word in BACKCHANNELS:
            before = len(_cdr_lines(cfg))
            result = await caller.ask(question, backchannel=await speech(word))
            after = result["after_backchannel"]
            heard_after = "" if after is None else await listen(after)
            # stopped: the reply did not go on, or a new one began (taken as a question: "not sure")
            stopped = result["went_on"] is False or "not sure" in heard_after or after is None
            false_stops += stopped
            if stopped:
                mistakes.append(
                    f"stopped by {word!r}: after it {heard_after!r}; app heard {await _app_heard(cfg, before)}"
                )
    return {
        "answered_right": f"{right}/{len(answerable)}",
        "answered_pct": round(100 * right / len(answerable), 1),
        "answered_directly": f"{direct}/{len(answerable)}",
        "checks": checks,
        "honest_on_unknowns": f"{honest}/{len(unknown)}",
        "honest_pct": round(100 * honest / len(unknown), 1),
        "false_cutoffs": f"{cutoffs}/{len(paused)}",
        "backchannel_false_stops": f"{false_stops}/{len(BACKCHANNELS)}",
        "latency_ms": {
            "n": len(latencies),
            "p50": round(1000 * float(np.percentile(latencies, 50)), 1),
            "p95": round(1000 * float(np.percentile(latencies, 95)), 1),
        }
        if latencies
        else None,
        "mistakes": mistakes,
    }


def run_quality(answerable: int | None = None, unknown: int | None = None) -> dict:
    """Every held-out question of the clinic set (69 answerable, 33 unknown today) unless limited."""
    kb, rows_answerable, rows_unknown = _questions(answerable, unknown)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bqual{os.getpid()}", Path(tmp))
        env = {"AIPBX_HITL": "0", "AIPBX_EXTENSIONS_FILE": str(_extensions_for(kb["business"], Path(tmp)))}
        with Instance(cfg, env):
            return asyncio.run(_run(cfg, rows_answerable, rows_unknown, {i["id"]: i for i in kb["items"]}))
