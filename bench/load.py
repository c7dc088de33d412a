"""Conversation load over real SIP calls: how long callers wait for an answer when many ask at once.

``python -m bench load`` starts a scratch instance (Asterisk, Chroma, the ARI app with the offline
providers, no operators, no call caps and admission control off: the raw capacity is measured),
gives extension 1004 the evaluation clinic's knowledge and, for each N of ``--load-steps``
(10, 20, 30): N calls from one phone, all greeted, then one question per call, asked ``--spacing``
(0.5 s) apart; the calls take turns over ten different questions (the answers differ, so the voice's
memory of what it has said helps only as much as a real line's repeated questions would). Per step:
the answer latency at the phone (the question's last sound -> the reply's first sound) p50/p95, the
unanswered count (no reply within 30 s), the ARI app's CPU and RSS.

Then memory: ``--memory-calls`` (200) short AI calls in waves of 20, the ARI app's RSS after each
wave; flat means the calls' state is freed when they end.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.media import _cpu_seconds
from bench.quality import _questions, _seed, _wait
from softphone.analysis import first_sound_at, last_sound_at, silent_tail, speech_seconds
from stack.instance import Instance, scratch_config

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


def run_load(steps=(10, 20, 30), spacing_s: float = 0.5, memory_calls: int = 200) -> dict:
    from softphone.voice import speech

    kb, _, _ = _questions(0, 0)
    questions = [asyncio.run(speech(text)) for text in QUESTIONS]
    out: dict = {"questions": list(QUESTIONS), "spacing_s": spacing_s, "steps": {}, "memory": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bload{os.getpid()}", Path(tmp))
        with Instance(cfg, APP_ENV) as instance:
            pid = instance.app.proc.pid
            asyncio.run(_seed(cfg, kb))
            for count in steps:
                cpu0, started = _cpu_seconds(pid), time.monotonic()
                step = asyncio.run(_step(cfg, count, spacing_s, questions))
                wall = time.monotonic() - started
                step["ariapp_cpu_percent_of_core"] = round(100 * (_cpu_seconds(pid) - cpu0) / wall, 1)
                step["ariapp_rss_mb"] = _rss_mb(pid)
                out["steps"][str(count)] = step
                time.sleep(3.0)
            if memory_calls:
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
