"""Conversation benchmarks measured at the phone, through the real Asterisk, offline providers.

turns     mouth-to-ear turn latency: the phone's last sound of its question -> the first sound of
          the AI's reply, from the phone's own send/receive timelines (kernel receive timestamps).
          The app's per-turn marks (STT final, retrieval, first token, first TTS audio, first RTP,
          model time and pipeline overhead) come from the call's metadata.json. 1004 knows the
          answers (``KNOWLEDGE``) and no operator is asked: the AI's own answer path is measured.
barge_in  the phone starts talking over the AI's greeting: time until the AI's audio stops at the
          phone.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from aipbx import sealing
from softphone.analysis import first_sound_at, frame_levels, last_sound_at, silent_tail, speech_seconds
from stack.instance import Instance, scratch_config

QUESTIONS = [
    "When is the team meeting next week?",
    "Is the office open on Saturday?",
    "Can you tell me the delivery date?",
    "Where is room three?",
    "Who should I call about the invoice?",
]
#: What 1004's owner knows: each question is answered (the answer path is measured, not "not sure").
KNOWLEDGE = [
    "Next Monday's team meeting is at 10 a.m. in room 3.",
    "The office is open on Saturdays from 10 a.m. to 2 p.m.",
    "Orders placed this week will be delivered next Thursday.",
    "Room 3 is on the second floor, next to the lifts.",
    "For questions about an invoice, call our accounts team at 555-0142.",
]
#: Operators would take unsure questions over; the benchmark measures the AI's own answers.
APP_ENV = {"AIPBX_HITL": "0"}


async def _seed(cfg) -> None:
    from knowledge.retrieval import ChromaStore, Document, Retriever, UsemEmbedder

    store = ChromaStore("127.0.0.1", cfg.chroma_port, prefix=f"kb{cfg.name}", token=cfg.chroma_token)
    await Retriever(UsemEmbedder(), store).add("1004", [Document(f"k{i}", t) for i, t in enumerate(KNOWLEDGE)])


async def _wait(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the AI did not answer in time")


async def _turns(cfg, count: int) -> list[float]:
    from softphone import Phone
    from softphone.voice import speech

    questions = [await speech(q) for q in QUESTIONS]
    phone = Phone(
        ext="1001", password=cfg.sip_password("1001"), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1"
    )
    await phone.start()
    await phone.register(expires=300)
    latencies: list[float] = []
    try:
        call = await phone.call("1004", timeout=15)
        await _wait(lambda: speech_seconds(call.received_audio()) > 2.0, 20)
        await _wait(lambda: silent_tail(call.received_audio(), 1.0), 30)
        for index in range(count):
            await call.play_and_wait(questions[index % len(questions)])
            sent = call.sent_audio()
            said_end = last_sound_at(sent)
            await _wait(lambda end=said_end: speech_seconds(call.received_audio()[int(end * 8000) :]) > 0.5, 20)
            heard = first_sound_at(call.received_audio(), after=said_end)
            latencies.append(heard - said_end)
            await _wait(lambda: silent_tail(call.received_audio(), 0.8), 30)
        await call.hangup()
    finally:
        await phone.unregister()
        await phone.close()
    return latencies


def _percentiles(values: list[float], scale: float = 1000.0) -> dict:
    array = np.array(values) * scale
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
        "max": round(float(array.max()), 1),
    }


def run_turns(count: int = 20) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bturn{os.getpid()}", Path(tmp))
        with Instance(cfg, APP_ENV):
            asyncio.run(_seed(cfg))
            latencies = asyncio.run(_turns(cfg, count))
            time.sleep(2.0)
        marks: dict[str, list[float]] = {}
        for folder in cfg.recordings_dir.iterdir():
            if not sealing.exists(folder, "metadata.json"):
                continue
            for turn in json.loads(sealing.read_text(folder, "metadata.json", cfg.recordings_keys))["turns"]:
                for name, value in (turn.get("latency_ms") or {}).items():
                    marks.setdefault(name, []).append(value / 1000.0)
    return {
        "mouth_to_ear_ms": _percentiles(latencies),
        "app_marks_ms_after_end_of_speech": {name: _percentiles(v) for name, v in sorted(marks.items())},
    }


async def _barge_ins(cfg, count: int) -> list[float]:
    from softphone import Phone
    from softphone.voice import speech

    talk = await speech("Sorry, can I ask something else?")
    phone = Phone(
        ext="1001", password=cfg.sip_password("1001"), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1"
    )
    await phone.start()
    await phone.register(expires=300)
    reactions = []
    try:
        for _ in range(count):
            call = await phone.call("1004", timeout=15)
            await _wait(lambda c=call: speech_seconds(c.received_audio()) > 1.0, 20)
            call.play(talk)
            await asyncio.sleep(2.0)
            talk_start = first_sound_at(call.sent_audio())
            # the AI's audio stops: the first long silence at the phone after the caller started
            levels = frame_levels(call.received_audio())
            index, quiet = int(talk_start * 50), 0
            while index < len(levels) and quiet < 30:  # 600 ms: longer than any pause in speech
                quiet = quiet + 1 if levels[index] < -40 else 0
                index += 1
            reactions.append((index - quiet) * 0.02 - talk_start)
            await call.hangup()
            await asyncio.sleep(0.5)
    finally:
        await phone.unregister()
        await phone.close()
    return reactions


def run_barge_in(count: int = 10) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = scratch_config(f"bbarge{os.getpid()}", Path(tmp))
        with Instance(cfg):
            reactions = asyncio.run(_barge_ins(cfg, count))
    return {"reaction_at_phone_ms": _percentiles(reactions)}
