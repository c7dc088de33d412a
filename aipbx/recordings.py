"""The files every call leaves in ``recordings/<call_id>/``, and how its transcript is written.

    caller.wav      what the caller said
    callee.wav      what the caller heard: the answering phone, or the AI's voice on AI calls
    mixed.wav       both, aligned
    transcript.txt  one line per turn (empty when no speech recognition ran, e.g. phone-to-phone calls)
    metadata.json   the call record, durations, turns with latencies, media statistics

The ARI app writes them (``ariapp.calls.recording``); the console reads them and writes the
transcript of a call transcribed after it ended, in the same format.
"""

from __future__ import annotations

from typing import Any

FILES = ("caller.wav", "callee.wav", "mixed.wav")
CALL_FILES = (*FILES, "transcript.txt", "metadata.json")  # sealed to <name>.enc at the end (aipbx.sealing)


def transcript_text(turns: list[dict[str, Any]]) -> str:
    """``transcript.txt`` of ``turns``: ``[mm:ss.ss] speaker: text`` per turn, ``[interrupted]`` marked."""
    lines = []
    for turn in turns:
        minutes, seconds = divmod(float(turn["t"]), 60)
        mark = " [interrupted]" if turn.get("interrupted") else ""
        lines.append(f"[{int(minutes):02d}:{seconds:05.2f}] {turn['speaker']}: {turn['text']}{mark}")
    return "\n".join(lines) + ("\n" if lines else "")
