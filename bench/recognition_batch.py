"""Recognition capacity of one 2-core node: does batching utterances pay?

N utterances that arrived together (real synthesised speech, sent over G.711 µ-law at 8 kHz and
resampled to 16 kHz, as the call pipeline hands them to the recogniser) are recognised three ways:

serial    one model with 2 intra-op threads, one utterance after the other (what the offline
          recogniser does today: one worker thread over the model);
batched   faster-whisper's ``BatchedInferencePipeline``: the N utterances side by side in one
          encoder and one decoder call (``clip_timestamps`` marks each utterance in one buffer);
copies    two copies of the model with 1 thread each, each on a thread of its own, taking the next
          utterance when free.

For each N (1, 2, 4, 8) and each way: the wall time until the last of the N transcripts is in,
divided by N (seconds per utterance; lower is better), its ratio to serial, the CPU time per
utterance (all threads; on a saturated node this, not the wall time, bounds throughput), and the
share of the spoken words recognised (so that a faster way that hears less does not win). The median of
``repeats`` runs is reported; every model has decoded once before the clock starts.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aipbx.audio.g711 import ulaw_decode, ulaw_encode
from aipbx.audio.resample import resample
from bench.speech import SENTENCE

UTTERANCES = (
    SENTENCE,
    "We open at nine in the morning on weekdays.",
    "Could you send me the invoice for last month?",
    "The delivery is planned for Thursday afternoon.",
    "Please call the front desk if the door is locked.",
    "The new price list starts on the first of next month.",
    "I will be in the office until six today.",
    "My account number ends in four five six.",
)
SIZES = (1, 2, 4, 8)
_RATE = 16000


def phone_audio(texts: Sequence[str]) -> list[np.ndarray]:
    """Each text spoken, at 8 kHz over G.711 µ-law and back, resampled to 16 kHz float32."""
    from softphone.voice import speech

    out = []
    for text in texts:
        pcm8 = asyncio.run(speech(text, 8000))
        heard = ulaw_decode(ulaw_encode(pcm8))
        out.append(resample(heard, 8000, _RATE).astype(np.float32) / 32768.0)
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def recall(said: str, heard: str) -> float:
    """Share of the words said that appear in what was heard (order-free, each counted once)."""
    pool = _words(heard)
    hits = 0
    for word in _words(said):
        if word in pool:
            pool.remove(word)
            hits += 1
    return hits / max(1, len(_words(said)))


def _options(audio_s: float) -> dict[str, Any]:
    """The decoding options of :class:`aipbx.providers.local.WhisperSTT` (greedy, guarded)."""
    return {
        "language": "en",
        "beam_size": 1,
        "temperature": 0.0,
        "condition_on_previous_text": False,
        "no_repeat_ngram_size": 3,
        "max_new_tokens": min(220, 16 + int(20 * audio_s + 0.999)),
        "without_timestamps": True,
        "vad_filter": False,
    }


def _serial(model: Any, clips: list[np.ndarray]) -> list[str]:
    texts = []
    for clip in clips:
        segments, _ = model.transcribe(clip, **_options(len(clip) / _RATE))
        texts.append("".join(seg.text for seg in segments))
    return texts


def _batched(pipeline: Any, clips: list[np.ndarray]) -> list[str]:
    gap = np.zeros(_RATE // 10, dtype=np.float32)
    joined, stamps, at = [], [], 0
    for clip in clips:
        stamps.append({"start": at / _RATE, "end": (at + len(clip)) / _RATE})
        joined += [clip, gap]
        at += len(clip) + len(gap)
    longest = max(len(c) for c in clips) / _RATE
    options = _options(longest)
    options.pop("condition_on_previous_text")  # not an option of the batched pipeline
    segments, _ = pipeline.transcribe(np.concatenate(joined), clip_timestamps=stamps, batch_size=len(clips), **options)
    texts = [""] * len(clips)
    for seg in segments:
        index = min(range(len(stamps)), key=lambda i: abs(stamps[i]["start"] - seg.start))
        texts[index] += seg.text
    return texts


def _copies(models: Sequence[Any], clips: list[np.ndarray]) -> list[str]:
    texts = [""] * len(clips)
    lock = threading.Lock()
    todo = list(range(len(clips)))

    def run(model: Any) -> None:
        while True:
            with lock:
                if not todo:
                    return
                index = todo.pop(0)
            texts[index] = _serial(model, [clips[index]])[0]

    threads = [threading.Thread(target=run, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return texts


def run_recognition_batch(model_name: str = "tiny.en", sizes: Sequence[int] = SIZES, repeats: int = 5) -> dict:
    """Seconds per utterance for each way and each N (see the module docstring)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel  # type: ignore[import-untyped]

    from aipbx.providers.local.models import resolve_whisper_model

    directory = str(resolve_whisper_model(model_name))
    load = {"device": "cpu", "compute_type": "int8", "local_files_only": True}
    two_threads = WhisperModel(directory, cpu_threads=2, **load)
    singles = [WhisperModel(directory, cpu_threads=1, **load) for _ in range(2)]
    pipeline = BatchedInferencePipeline(two_threads)
    texts = [UTTERANCES[i % len(UTTERANCES)] for i in range(max(sizes))]
    audio = phone_audio(texts)
    ways: dict[str, Callable[[list[np.ndarray]], list[str]]] = {
        "serial": lambda clips: _serial(two_threads, clips),
        "batched": lambda clips: _batched(pipeline, clips),
        "copies": lambda clips: _copies(singles, clips),
    }
    for way in ways.values():  # warm-up: first decodes allocate
        way(audio[:2])
    _serial(singles[0], audio[:1])
    _serial(singles[1], audio[:1])

    results: dict[str, Any] = {
        "model": model_name,
        "utterance_s": round(float(np.mean([len(a) for a in audio])) / _RATE, 2),
        "repeats": repeats,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "sizes": {},
    }
    for n in sizes:
        clips = audio[:n]
        walls: dict[str, list[float]] = {name: [] for name in ways}
        cpus: dict[str, list[float]] = {name: [] for name in ways}
        heard: dict[str, list[str]] = {}
        for _ in range(repeats):  # the ways take turns, so that a busier moment of the machine hits all
            for name, way in ways.items():
                started, cpu = time.perf_counter(), time.process_time()
                heard[name] = way(clips)
                walls[name].append(time.perf_counter() - started)
                cpus[name].append(time.process_time() - cpu)
        row: dict[str, Any] = {}
        for name in ways:
            wall = statistics.median(walls[name])
            row[name] = {
                "per_utterance_s": round(wall / n, 3),
                "wall_s": round(wall, 3),
                # CPU of every thread of this process: what a saturated node would pay per utterance
                "cpu_per_utterance_s": round(statistics.median(cpus[name]) / n, 3),
                "word_recall": round(
                    statistics.mean(recall(t, h) for t, h in zip(texts[:n], heard[name], strict=True)), 3
                ),
            }
        for name in ("batched", "copies"):
            row[name]["vs_serial"] = round(row[name]["wall_s"] / row["serial"]["wall_s"], 2)
        results["sizes"][str(n)] = row
    return results


if __name__ == "__main__":
    import json
    import sys

    json.dump(run_recognition_batch(*(sys.argv[1:2] or ["tiny.en"])), sys.stdout, indent=2)
    print()
