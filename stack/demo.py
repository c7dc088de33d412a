"""The demo calls of ``make demo``: a missed call the AI answers, then the AI learning from a call.

1. 1002 registers and rings without answering; 1001 calls it. After 1002's no-answer timeout the AI
   answers with its greeting, the caller says one sentence, the AI replies from the knowledge
   imported for 1002.
2. 1001 calls 1002 again and 1002 answers: the caller hears that the call is recorded, and 1002's
   owner says something new. The call is written down per speaker, the worker learns what the
   owner said, and then 1003 calls 1002 while 1002 is away: the AI tells it.

What the phones heard is transcribed (offline whisper) and printed, with where the recordings are.
The stack stays up so a person can register a softphone and call in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from aipbx import sealing
from aipbx.recordings import CALL_FILES
from softphone.analysis import silent_tail, speech_seconds
from stack.config import REPO, StackConfig

CALLER, CALLEE, LATER = "1001", "1002", "1003"
SENTENCE = "Hi, this is Alex from Acme. When is the team meeting next week?"
# The learning story: what 1002's owner tells a caller, and what the next caller asks the AI.
SMALL_TALK = "Hi Jiyoung, it's Alex again. Are you open at the weekend?"
NEW_FACT = "Good question. From next week we open on Saturdays from ten to two."
LATER_QUESTION = "Are you open on Saturdays?"
#: The whisper model that writes down what the phones heard (:func:`_listener`).
LISTENER = "base"
# What 1002's owner has told the assistant, imported like any document (PostgreSQL, then the index).
DEMO_KNOWLEDGE = REPO / "knowledge" / "demo" / "1002.md"


def _import_knowledge(cfg: StackConfig) -> None:
    env = {
        **os.environ,
        **cfg.process_env(),
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev",
        "PYTHONPATH": str(REPO),
    }
    subprocess.run(
        [sys.executable, "manage.py", "import_knowledge", "--owner", CALLEE, str(DEMO_KNOWLEDGE)],
        cwd=REPO,
        env=env,
        check=True,
        stderr=subprocess.DEVNULL,
    )


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


async def _demo_call(cfg: StackConfig) -> dict:
    from softphone import Phone
    from softphone.voice import speech

    server = ("127.0.0.1", cfg.sip_port)
    await asyncio.to_thread(_import_knowledge, cfg)
    print(f"imported {DEMO_KNOWLEDGE.relative_to(REPO)} as {CALLEE}'s knowledge", flush=True)
    sentence = await speech(SENTENCE)
    callee = Phone(ext=CALLEE, password=cfg.sip_password(CALLEE), server=server, local_ip="127.0.0.1")
    caller = Phone(ext=CALLER, password=cfg.sip_password(CALLER), server=server, local_ip="127.0.0.1")
    await callee.start()
    await caller.start()
    try:
        await callee.register(expires=120)
        await caller.register(expires=120)
        ring = cfg.ring_seconds(CALLEE)
        print(
            f"\n{CALLER} calls {CALLEE}; {CALLEE} rings and does not answer (no-answer timeout {ring} s) ...",
            flush=True,
        )
        started = time.monotonic()
        call = await caller.call(CALLEE, timeout=ring + 20)
        print(f"answered by the AI after {time.monotonic() - started:.1f} s", flush=True)
        await _until(lambda: speech_seconds(call.received_audio()) > 2.0, 20, "the greeting")
        await _until(lambda: silent_tail(call.received_audio(), 1.0), 30, "the end of the greeting")
        greeting_end = len(call.received_audio())
        print(f'caller says: "{SENTENCE}"', flush=True)
        await call.play_and_wait(sentence)
        await _until(lambda: speech_seconds(call.received_audio()[greeting_end:]) > 1.5, 30, "the AI's reply")
        await _until(lambda: silent_tail(call.received_audio(), 1.2), 30, "the end of the reply")
        heard = call.received_audio()
        await call.hangup()
    finally:
        for phone in (caller, callee):
            try:
                await phone.unregister()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
            await phone.close()

    return {"greeting": await _text(heard[:greeting_end]), "reply": await _text(heard[greeting_end:])}


def _latest_cdr(cfg: StackConfig) -> dict | None:
    files = sorted(cfg.cdr_dir.glob("cdr-*.jsonl"))
    for path in reversed(files):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            return json.loads(lines[-1])
    return None


async def _learning_story(cfg: StackConfig) -> dict:
    """1001 calls 1002, who answers and says a new fact; then 1003 asks 1002's AI about it."""
    from softphone import Phone
    from softphone.voice import speech

    server = ("127.0.0.1", cfg.sip_port)
    phones = {
        ext: Phone(ext=ext, password=cfg.sip_password(ext), server=server, local_ip="127.0.0.1")
        for ext in (CALLER, CALLEE, LATER)
    }
    for phone in phones.values():
        await phone.start()
    try:
        await phones[CALLER].register(expires=120)
        await phones[CALLEE].register(expires=120)
        print(f"\n{CALLER} calls {CALLEE} again, and this time {CALLEE} answers ...", flush=True)
        call = await phones[CALLER].dial(CALLEE)
        incoming = await phones[CALLEE].next_incoming(timeout=20)
        answered = await incoming.answer()
        await asyncio.wait_for(call.answered(), 5)
        notice = await _text(call.early_audio())
        print(f'caller heard before it rang: "{notice}"', flush=True)
        await asyncio.sleep(0.5)
        print(f'caller says: "{SMALL_TALK}"', flush=True)
        await call.play_and_wait(await speech(SMALL_TALK))
        await asyncio.sleep(0.8)
        print(f'{CALLEE} says: "{NEW_FACT}"', flush=True)
        await answered.play_and_wait(await speech(NEW_FACT))
        await asyncio.sleep(1.2)
        await call.hangup()
        await phones[CALLEE].unregister()
    finally:
        await phones[CALLER].close()
        await phones[CALLEE].close()
    await asyncio.sleep(2.0)  # the call's files and CDR line
    call_id = (_latest_cdr(cfg) or {}).get("call_id", "")
    learned = await asyncio.to_thread(_learned, cfg, call_id)
    print(f"\nwhat {CALLEE}'s AI learned from that call ({learned.get('status')}):", flush=True)
    for item in learned.get("items", []):
        print(
            f'  [{item["status"]}, said by the {item["speaker"]} at {item["span"]["start_s"]:.1f} s] "{item["text"]}"',
            flush=True,
        )
    try:
        await phones[LATER].register(expires=120)
        print(f"\n{LATER} calls {CALLEE}, who is away: the AI answers at once ...", flush=True)
        later = await phones[LATER].call(CALLEE, timeout=20)
        await _until(lambda: speech_seconds(later.received_audio()) > 2.0, 20, "the greeting")
        await _until(lambda: silent_tail(later.received_audio(), 1.0), 30, "the end of the greeting")
        asked_at = len(later.received_audio())
        print(f'caller asks: "{LATER_QUESTION}"', flush=True)
        await later.play_and_wait(await speech(LATER_QUESTION))
        await _until(lambda: speech_seconds(later.received_audio()[asked_at:]) > 1.5, 30, "the AI's answer")
        await _until(lambda: silent_tail(later.received_audio(), 1.2), 30, "the end of the answer")
        answer = await _text(later.received_audio()[asked_at:])
        await later.hangup()
    finally:
        try:
            await phones[LATER].unregister()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        await phones[LATER].close()
    return {"notice": notice, "learned": learned, "answer": answer, "call_id": call_id}


def _learned(cfg: StackConfig, call_id: str) -> dict:
    """What the worker learned from ``call_id`` (waits for it: transcript, then extraction)."""
    env = {
        **os.environ,
        **cfg.process_env(),
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev",
        "PYTHONPATH": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "learned_from_call", call_id, "--wait", "90"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"status": f"not learned: {out.stderr.strip()[-200:]}", "items": []}
    return json.loads(out.stdout)


@functools.cache
def _listener() -> Any:
    """What writes down what a phone heard: whisper ``base``, not the AI's own ``tiny.en``, so that the
    printout is what a person on the line would hear ("This call may be recorded and transcribed.",
    which ``tiny.en`` writes "... recorded in transcribe."); ``bench quality`` judges with it too."""
    from aipbx.providers.local import WhisperSTT

    return WhisperSTT(model=LISTENER)


async def _text(pcm: np.ndarray) -> str:
    from aipbx.audio.resample import resample

    return (await _listener().transcribe(resample(pcm, 8000, 16000), "en")).text if len(pcm) else ""


def run_demo(cfg: StackConfig) -> int:
    heard = asyncio.run(_demo_call(cfg))
    print("\nwhat the caller's phone heard (transcribed offline):")
    print(f'  AI greeting: "{heard["greeting"]}"')
    print(f'  AI reply:    "{heard["reply"]}"')
    time.sleep(1.5)  # the ARI app finishes the call's files right after the hang-up
    cdr = _latest_cdr(cfg)
    if cdr:
        folder = cfg.recordings_dir / cdr["call_id"]
        names = ", ".join(n for n in CALL_FILES if sealing.exists(folder, n))
        sealed = cfg.secrets.get(sealing.ENV_VAR)
        print(
            f"\nrecordings: {folder}/ ({names})"
            + (
                "\n  sealed at rest (.enc, AES-256-GCM); listen with the console, or: "
                f"AIPBX_RECORDINGS_KEYS=... python -m aipbx.sealing cat {folder} mixed.wav > mixed.wav"
                if sealed
                else "\n  stored in clear: AIPBX_RECORDINGS_KEYS is not set"
            )
        )
        print(f"CDR: {json.dumps(cdr, ensure_ascii=False)}")
    story = asyncio.run(_learning_story(cfg))
    print(f'\nwhat {LATER} heard from {CALLEE}\'s AI (transcribed offline):\n  AI answer:   "{story["answer"]}"')
    print(f"  (the call it learned from: http://127.0.0.1:{cfg.web_port}/calls/{story['call_id']}/)")
    phones = cfg.phones()
    print(
        f"\nThe stack keeps running. Register a softphone (Zoiper, Linphone, MicroSIP...) to "
        f"{phones['sip_server']}:{phones['sip_port']} (UDP):"
    )
    for ext in phones["extensions"]:
        print(f"  {ext['extension']:>6}  {ext['owner']:<14} password {ext['password']}")
    print(f"Web console: http://127.0.0.1:{cfg.web_port}/   Stop everything: make down")
    return 0
