"""Conversation load over real SIP calls: how long callers wait for an answer when many ask at once.

``python -m bench load`` starts a scratch instance (Asterisk, Chroma, the ARI app with the offline
providers, no operators, no call caps and admission control off: the raw capacity is measured),
gives extension 1004 the evaluation clinic's knowledge and, for each N of ``--load-steps``
(10, 20, 30): a freshly started ARI app (its voice has said nothing yet: no reply is in the reply
cache), N calls from one phone, all greeted, then one question per call, asked ``--spacing`` (0.5 s)
apart. Each caller asks about a different item of the knowledge (27 of them; from the 28th caller
on, questions come round again, as a real line's do), so every answer is synthesised for the
first time. Per step: the answer latency at the phone (the question's last sound -> the reply's
first sound) p50/p95, the unanswered count (no reply within 30 s), the ARI app's CPU and RSS, and
the app's own per-turn marks (recognised, first audio; ms after the end of speech) as medians.

Then, with ``--load-live`` (5), the same steps while that many phone-to-phone calls talk (two parties
taking turns, 3 s utterances) and are written down live: the final lines' latency is reported beside
the answers'. The recogniser that writes calls down runs at a lower priority than the one that answers.

Then memory: ``--memory-calls`` (200) short AI calls in waves of 20, the ARI app's RSS after each
wave; flat means the calls' state is freed when they end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.media import _cpu_seconds
from bench.quality import _questions, _seed, _wait
from softphone.analysis import first_sound_at, last_sound_at, silent_tail, speech_seconds
from stack.instance import Instance

#: One plain question per item of the evaluation clinic's knowledge (27 items, 27 different answers).
QUESTIONS = (
    "What are your opening hours on Saturday?",
    "How much does a crown cost?",
    "Are you open Sundays?",
    "What's your address?",
    "How much are braces?",
    "Can I pay by card?",
    "Do you see kids?",
    "Is there an elevator?",
    "How much is a cleaning?",
    "Which subway station is closest?",
    "What are your hours during the week?",
    "Are you open late on Thursdays?",
    "When do you close for lunch?",
    "Which days is Dr. Lee in?",
    "What days does Dr. Choi work?",
    "How much for a white filling?",
    "How much is a gold inlay?",
    "Roughly how much is one implant?",
    "How much to get my teeth whitened?",
    "Is there a fee if I cancel last minute?",
    "What if I'm running late?",
    "How do I book?",
    "Do I need my ID card for the first visit?",
    "Is parking free for patients?",
    "Do you take national health insurance?",
    "Is there an emergency number?",
    "When can I see the orthodontist?",
)
APP_ENV = {
    "AIPBX_HITL": "0",
    "AIPBX_MAX_AI_CALLS": "0",
    "AIPBX_MAX_AI_CALLS_PER_CALLER": "0",
    "AIPBX_ADMIT_LATENCY_S": "0",  # measure the queue, not the door
}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _phone(cfg):
    from softphone import Phone

    phone = Phone(
        ext="1001", password=cfg.sip_password("1001"), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1"
    )
    await phone.start()
    await phone.register(expires=900)
    return phone


async def _greeted(phone, count: int) -> list:
    calls = []
    for _ in range(count):  # 20 set-ups per second
        calls.append(asyncio.ensure_future(phone.call("1004", timeout=20)))
        await asyncio.sleep(0.05)
    established = await asyncio.gather(*calls)
    await asyncio.gather(
        *(_wait(lambda c=c: speech_seconds(c.received_audio()) > 2.0, 30) for c in established),
    )
    await asyncio.gather(*(_wait(lambda c=c: silent_tail(c.received_audio(), 1.0), 30) for c in established))
    return list(established)


async def _step(cfg, count: int, spacing_s: float, questions: list[np.ndarray]) -> dict:
    phone = await _phone(cfg)
    try:
        calls = await _greeted(phone, count)

        async def ask(call, delay: float, question: np.ndarray) -> float | None:
            await asyncio.sleep(delay)
            asked_at = len(call.received_audio())
            await call.play_and_wait(question)
            said_end = last_sound_at(call.sent_audio())
            start = asked_at + len(question)
            if not await _wait(lambda: speech_seconds(call.received_audio()[start:]) > 0.3, 30):
                return None
            first = first_sound_at(call.received_audio(), after=said_end)
            return None if first is None else first - said_end

        latencies = await asyncio.gather(
            *(ask(call, i * spacing_s, questions[i % len(questions)]) for i, call in enumerate(calls))
        )
        await asyncio.gather(*(c.hangup() for c in calls), return_exceptions=True)
    finally:
        await phone.unregister()
        await phone.close()
    answered = [x for x in latencies if x is not None]
    return {
        "calls": count,
        "answered": len(answered),
        "unanswered": count - len(answered),
        "latency_ms": {
            "p50": round(1000 * float(np.percentile(answered, 50)), 1),
            "p95": round(1000 * float(np.percentile(answered, 95)), 1),
            "max": round(1000 * max(answered), 1),
        }
        if answered
        else None,
    }


async def _wave(cfg, count: int) -> int:
    phone = await _phone(cfg)
    try:
        calls = await _greeted(phone, count)
        await asyncio.gather(*(c.hangup() for c in calls), return_exceptions=True)
        return len(calls)
    finally:
        await phone.unregister()
        await phone.close()


_TURN = re.compile(r"turn latency \(ms after end of speech\): (\{.*?\})")


def _turn_marks(log_text: str) -> dict:
    """Medians of the ARI app's per-turn marks (ms after the end of the caller's speech) in ``log_text``."""
    marks: dict[str, list[float]] = {}
    for match in _TURN.finditer(log_text):
        try:
            values = json.loads(match.group(1).replace("'", '"'))
        except ValueError:
            continue
        for name, value in values.items():
            if isinstance(value, (int, float)):
                marks.setdefault(name, []).append(float(value))
    return {name: round(statistics.median(values), 1) for name, values in marks.items()}


def _run_step(instance: Instance, count: int, spacing_s: float, questions: list[np.ndarray], live: int, talk) -> dict:
    """One step on a freshly started ARI app; with ``live`` phone-to-phone calls talking meanwhile."""
    from bench.transcripts import _final_latencies, _pair, _stats

    cfg = instance.cfg
    instance.app.stop()
    instance.app.start()  # a new process: nothing said yet, nothing in the reply cache
    pid = instance.app.proc.pid
    log_at = instance.app.log_path.stat().st_size
    since_ms = int(time.time() * 1000)
    cpu0, started = _cpu_seconds(pid), time.monotonic()

    async def run() -> dict:
        stop = asyncio.Event()
        pairs = [asyncio.ensure_future(_pair(cfg, i, talk, 600.0, stop)) for i in range(live)]
        if live:
            await asyncio.sleep(4.0)  # the phone calls are talking (and being written down) first
        try:
            return await _step(cfg, count, spacing_s, questions)
        finally:
            stop.set()
            await asyncio.gather(*pairs, return_exceptions=True)

    step = asyncio.run(run())
    wall = time.monotonic() - started
    step["ariapp_cpu_percent_of_core"] = round(100 * (_cpu_seconds(pid) - cpu0) / wall, 1)
    step["ariapp_rss_mb"] = _rss_mb(pid)
    if live:
        time.sleep(3.0)  # the last lines of the phone calls
        latencies, lines = _final_latencies(cfg, since_ms)
        step["live_phone_calls"] = {"calls": live, "final_lines": lines, "final_latency": _stats(latencies)}
    instance.app.stop()  # its log is complete once the process has ended
    with instance.app.log_path.open("rb") as log:
        log.seek(log_at)
        step["ariapp_turn_marks_ms_p50"] = _turn_marks(log.read().decode(errors="replace"))
    return step


def run_load(
    steps=(10, 20, 30), spacing_s: float = 0.5, memory_calls: int = 200, live: int = 5, app_env: dict | None = None
) -> dict:
    """The steps; then, with ``live`` > 0, the same steps beside ``live`` phone-to-phone calls that
    are transcribed live; then the memory waves. ``app_env`` adds to the ARI app's environment."""
    from bench.transcripts import UTTERANCES, live_config
    from softphone.voice import speech

    kb = _questions(0, 0)[0]["items"]
    questions = [asyncio.run(speech(text)) for text in QUESTIONS]
    talk = [asyncio.run(speech(text)) for text in UTTERANCES] if live else []
    env = {**APP_ENV, **(app_env or {})}
    out: dict = {"questions": list(QUESTIONS), "spacing_s": spacing_s, "app_env": env, "steps": {}, "memory": {}}
    with tempfile.TemporaryDirectory() as tmp:
        # the shipped extensions (1001 calls the clinic on 1004) and pairs 3000/3001... for phone calls
        cfg = live_config(f"bload{os.getpid()}", Path(tmp), max(live, 1), shipped=True, live_calls=max(live, 1))
        with Instance(cfg, env) as instance:
            asyncio.run(_seed(cfg, kb))
            for count in steps:
                out["steps"][str(count)] = _run_step(instance, count, spacing_s, questions, 0, talk)
                print(f"load {count}: {out['steps'][str(count)]}", flush=True)
                time.sleep(3.0)
            if live:
                out["with_live_phone_calls"] = {}
                for count in steps:
                    step = _run_step(instance, count, spacing_s, questions, live, talk)
                    out["with_live_phone_calls"][str(count)] = step
                    print(f"load {count} + {live} live phone calls: {step}", flush=True)
                    time.sleep(3.0)
            if memory_calls:
                instance.app.start()
                pid = instance.app.proc.pid
                rss = [_rss_mb(pid)]
                done = 0
                while done < memory_calls:
                    done += asyncio.run(_wave(cfg, min(20, memory_calls - done)))
                    time.sleep(2.0)  # the calls' files are written right after their hang-up
                    rss.append(_rss_mb(pid))
                out["memory"] = {
                    "calls": done,
                    "rss_mb_after_each_wave": rss,
                    "growth_mb_after_the_first_wave": round(rss[-1] - rss[1], 1),
                }
    return out
