"""Transcripts of phone-to-phone calls: live capacity on this machine, and the after-the-call speed.

live       N concurrent phone-to-phone calls through the real Asterisk, both parties talking in turns
           (3 s utterances, 1 s apart); the ARI app writes each call down live through snoop channels
           on its low-priority transcript lane. Per N: p50/p95 latency of a final line (its publish time
           on the event stream minus the end of the utterance it holds), lines produced per utterance
           said, and the ARI app's CPU per concurrent call. Reports the largest N whose p95 stays <= 2 s.
post_call  one synthetic two-party call of about a minute, transcribed from its WAV files the way the
           worker does (``webconsole.calls.transcription``), with ``tiny.en`` and with ``base``: call
           minutes transcribed per wall minute by one worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import redis
import yaml

from aipbx.directory import load_directory
from contract import stream_name
from stack.config import REPO, StackConfig
from stack.instance import Instance, scratch_config

UTTERANCES = [
    "We open at nine in the morning on weekdays.",
    "Could you send me the invoice for last month?",
    "The delivery is planned for Thursday afternoon.",
    "Please call the front desk if the door is locked.",
    "The new price list starts on the first of next month.",
    "I will be in the office until six today.",
]
FINAL_P95_TARGET_S = 2.0


def _bench_directory(base: Path, pairs: int, shipped: bool = False) -> Path:
    """An extensions file with ``2 * pairs`` phones (3000, 3001, ...), after the shipped four if ``shipped``."""
    path = base / "extensions.yaml"
    seed = yaml.safe_load((REPO / "asterisk" / "extensions.yaml").read_text(encoding="utf-8")) if shipped else {}
    extensions = [{"ext": str(3000 + n), "owner": f"Bench {n}", "no_answer_timeout": 60} for n in range(2 * pairs)]
    seed.update({"recording_notice": False, "extensions": [*seed.get("extensions", []), *extensions]})
    path.write_text(yaml.safe_dump(seed), encoding="utf-8")
    return path


def live_config(name: str, base: Path, pairs: int, shipped: bool = False, live_calls: int = 200) -> StackConfig:
    """A scratch instance with ``pairs`` pairs of phones for phone-to-phone calls (and the shipped
    extensions if ``shipped``), transcribing up to ``live_calls`` of them live."""
    from stack.config import ensure_secrets

    cfg = scratch_config(name, base, ring_seconds=None)
    extensions = _bench_directory(base, pairs, shipped)
    cfg.directory = load_directory(extensions)
    cfg.secrets = ensure_secrets(base / ".env", cfg.directory)
    cfg.extra_env.update({"AIPBX_EXTENSIONS_FILE": str(extensions), "AIPBX_LIVE_TRANSCRIPTION_CALLS": str(live_calls)})
    return cfg


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _pair(
    cfg: StackConfig, index: int, talk: list[np.ndarray], seconds: float, stop: asyncio.Event | None = None
) -> int:
    """One phone-to-phone call: the two parties take turns until ``seconds`` have passed (or ``stop``
    is set); returns utterances said."""
    from softphone import Phone

    caller_ext, callee_ext = str(3000 + 2 * index), str(3001 + 2 * index)
    phones = [
        Phone(ext=ext, password=cfg.sip_password(ext), server=("127.0.0.1", cfg.sip_port), local_ip="127.0.0.1")
        for ext in (caller_ext, callee_ext)
    ]
    for phone in phones:
        await phone.start()
        await phone.register(expires=300)
    said = 0
    try:
        outgoing = await phones[0].dial(callee_ext)
        incoming = await phones[1].next_incoming(timeout=15)
        answered = await incoming.answer()
        await asyncio.wait_for(outgoing.answered(), 5)
        await asyncio.sleep(0.3 * index)  # calls do not speak in lockstep
        legs = [outgoing, answered]
        started = time.monotonic()
        while time.monotonic() - started < seconds and not (stop is not None and stop.is_set()):
            await legs[said % 2].play_and_wait(talk[(said + index) % len(talk)])
            said += 1
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
        await outgoing.hangup()
    finally:
        for phone in phones:
            await phone.unregister()
            await phone.close()
    return said


def _final_latencies(cfg: StackConfig, since_ms: int) -> tuple[list[float], int]:
    """(final-line latencies in s, lines) from the instance's event stream since ``since_ms``."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    answered: dict[str, float] = {}
    latencies: list[float] = []
    for _, fields in client.xrange(stream_name(cfg.name), min=f"{since_ms}-0"):
        kind, call_id, ts = fields[b"type"].decode(), fields[b"call_id"].decode(), float(fields[b"ts"])
        data = json.loads(fields.get(b"data", b"{}"))
        if kind == "call.answered" and not data.get("ai"):
            answered[call_id] = ts
        elif kind == "transcript" and data.get("final") and call_id in answered and data.get("end") is not None:
            latencies.append(ts - (answered[call_id] + float(data["end"])))
    return latencies, len(latencies)


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    array = np.array(values)
    return {
        "n": len(values),
        "p50_s": round(float(np.percentile(array, 50)), 2),
        "p95_s": round(float(np.percentile(array, 95)), 2),
        "max_s": round(float(array.max()), 2),
    }


def run_live(steps: tuple[int, ...] = (1, 2, 4, 6, 8), seconds: float = 30.0) -> dict:
    from softphone.voice import speech

    talk = [asyncio.run(speech(text)) for text in UTTERANCES]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = live_config(f"btr{os.getpid()}", Path(tmp), max(steps))
        with Instance(cfg) as instance:
            time.sleep(3.0)  # models warm
            for calls in steps:
                since = int(time.time() * 1000)
                cpu0, wall0 = _cpu_seconds(instance.app.proc.pid), time.monotonic()

                async def step(n: int = calls) -> list[int]:
                    return await asyncio.gather(*(_pair(cfg, i, talk, seconds) for i in range(n)))

                said = sum(asyncio.run(step()))
                time.sleep(3.0)  # the last finals
                cpu = _cpu_seconds(instance.app.proc.pid) - cpu0
                wall = time.monotonic() - wall0
                latencies, lines = _final_latencies(cfg, since)
                results.append(
                    {
                        "calls": calls,
                        "utterances_said": said,
                        "final_lines": lines,
                        "final_latency": _stats(latencies),
                        "ariapp_cpu_per_call_percent": round(100 * cpu / wall / calls, 1),
                    }
                )
    within = [r["calls"] for r in results if r["final_latency"].get("p95_s", 99) <= FINAL_P95_TARGET_S]
    return {
        "steps": results,
        "max_calls_with_final_p95_le_2s": max(within, default=0),
        "note": "two parties taking turns, 3 s utterances 1 s apart; offline tiny.en on the transcript lane",
    }


def _write(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm.astype("<i2").tobytes())


def run_post_call(models: tuple[str, ...] = ("tiny.en", "base"), turns: int = 12) -> dict:
    from aipbx.providers.factory import build_stt
    from softphone.voice import speech
    from webconsole.calls.transcription import transcribe_call

    talk = [asyncio.run(speech(text)) for text in UTTERANCES]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gap = np.zeros(8000, dtype=np.int16)
        legs: dict[str, list[np.ndarray]] = {"caller": [], "callee": []}
        for index in range(turns):
            pcm = talk[index % len(talk)]
            speaking, silent = ("caller", "callee") if index % 2 == 0 else ("callee", "caller")
            legs[speaking] += [pcm, gap]
            legs[silent] += [np.zeros(len(pcm), dtype=np.int16), gap]
        for name, pieces in legs.items():
            _write(folder / f"{name}.wav", np.concatenate(pieces))
        call_s = sum(len(p) for p in legs["caller"]) / 8000
        for model in models:
            stt = build_stt({"AIPBX_STT_MODEL": model, "AIPBX_STT_MODEL_KO": model}, "en-US")
            asyncio.run(stt.warmup())
            started = time.perf_counter()
            lines = asyncio.run(transcribe_call(folder, None, stt, "en-US"))
            wall = time.perf_counter() - started
            results[model] = {
                "call_seconds": round(call_s, 1),
                "lines": len(lines),
                "wall_seconds": round(wall, 2),
                "call_minutes_per_wall_minute": round(call_s / wall, 1),
            }
    return results
