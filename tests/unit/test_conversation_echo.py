"""Tests for ariapp.conversation.echo on real synthesised speech through G.711.

Our voice and the caller's are Piper sentences (noise 0, so every run renders the same samples) at the
8 kHz telephone rate. The phone's echo is our voice delayed, attenuated and μ-law coded. The guard is
fed 20 ms frames the way ``AiCall._process`` feeds it and asked at every window where the caller's
side holds audible audio (where a VAD onset could be), as ``AiCall`` does at onsets and re-checks.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from aipbx.audio.g711 import ulaw_decode, ulaw_encode
from aipbx.audio.resample import resample
from aipbx.providers.local import PiperTTS
from ariapp.conversation.echo import EchoGuard, max_normalised_correlation

RATE = 8000
FRAME = 160
OURS = "Thank you for calling. Mister Kim is not available right now. How can I help you today?"
THEIRS = "Hello, I would like to know when your shop opens on Saturday morning, please."


@pytest.fixture(scope="module")
def voices() -> tuple[np.ndarray, np.ndarray]:
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    ours, theirs = (resample(asyncio.run(tts.synthesize_all(text)), tts.sample_rate, RATE) for text in (OURS, THEIRS))
    n = min(len(ours), len(theirs))
    assert n > 3 * RATE
    return ours[:n], theirs[:n]


def phone_line(pcm: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(pcm))


def echo_of(ours: np.ndarray, delay_ms: int, loss_db: float, path: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """Our voice as it comes back: through the hybrid's response, ``loss_db`` quieter, ``delay_ms`` late."""
    shaped = np.convolve(ours.astype(np.float64), path)[: len(ours)] * 10 ** (-loss_db / 20)
    delayed = np.concatenate([np.zeros(delay_ms * RATE // 1000), shaped])[: len(ours)]
    return np.clip(np.round(delayed), -32768, 32767).astype(np.int16)


def mix(*signals: np.ndarray) -> np.ndarray:
    return np.clip(np.sum([s.astype(np.int32) for s in signals], axis=0), -32768, 32767).astype(np.int16)


def verdicts(outbound: np.ndarray | None, inbound: np.ndarray) -> list[bool]:
    """is_echo() at every 20 ms tick whose last 200 ms of inbound audio is above -40 dBFS."""
    guard = EchoGuard(RATE)
    results = []
    for index in range(len(inbound) // FRAME):
        frames = slice(index * FRAME, (index + 1) * FRAME)
        out = None if outbound is None else outbound[frames]
        guard.feed(inbound[frames], out, FRAME)
        window = inbound[max(0, (index - 9) * FRAME) : (index + 1) * FRAME].astype(np.float64)
        if index >= 9 and 20 * np.log10(np.sqrt(np.mean(window**2)) / 32768 + 1e-12) > -40:
            results.append(guard.is_echo())
    assert len(results) > 50, "the scenario has too little audible inbound audio to judge"
    return results


@pytest.mark.parametrize("delay_ms", [40, 120, 250, 400])
@pytest.mark.parametrize("loss_db", [6, 12, 20])
def test_a_delayed_attenuated_copy_of_our_voice_is_echo(voices, delay_ms: int, loss_db: float) -> None:
    ours, _ = voices

    judged = verdicts(ours, phone_line(echo_of(ours, delay_ms, loss_db)))

    assert all(judged), f"{judged.count(False)} of {len(judged)} windows not judged echo"


@pytest.mark.parametrize("path", [(0.6, 0.3, 0.1), (1.0, -0.5)], ids=["lowpass", "highpass"])
def test_echo_through_a_line_hybrid_filter_is_echo(voices, path: tuple[float, ...]) -> None:
    ours, _ = voices

    judged = verdicts(ours, phone_line(echo_of(ours, 120, 12, path)))

    assert all(judged)


def test_the_caller_speaking_while_we_speak_is_not_echo(voices) -> None:
    ours, theirs = voices

    judged = verdicts(ours, phone_line(theirs))

    assert not any(judged)


def test_silence_on_our_side_never_counts_as_echo(voices) -> None:
    ours, theirs = voices
    guard = EchoGuard(RATE)

    for outbound in (None, np.zeros(len(ours), np.int16)):
        assert not any(verdicts(outbound, phone_line(theirs)))
    # and once our voice is older than the 700 ms the guard remembers, it is forgotten
    for index in range(40):
        guard.feed(ours[index * FRAME : (index + 1) * FRAME], ours[index * FRAME : (index + 1) * FRAME], FRAME)
    assert guard.recently_spoke()
    for index in range(40, 75):  # 700 ms: the whole remembered window + the longest delay
        guard.feed(ours[index * FRAME : (index + 1) * FRAME], None, FRAME)
    assert not guard.recently_spoke() and not guard.is_echo() and guard.last_score == 0.0


@pytest.mark.parametrize("delay_ms", [40, 250, 400])
@pytest.mark.parametrize("loss_db", [6, 12, 20])
def test_double_talk_is_the_caller_in_most_windows(voices, delay_ms: int, loss_db: float) -> None:
    ours, theirs = voices

    judged = verdicts(ours, phone_line(mix(theirs, echo_of(ours, delay_ms, loss_db))))

    assert judged.count(True) < len(judged) / 2, f"{judged.count(True)} of {len(judged)} windows judged echo"


def test_one_check_is_cheap(voices) -> None:
    ours, _ = voices
    guard = EchoGuard(RATE)
    for index in range(40):
        guard.feed(ours[index * FRAME : (index + 1) * FRAME], ours[index * FRAME : (index + 1) * FRAME], FRAME)

    costs = []
    for _ in range(30):
        started = time.perf_counter()
        guard.is_echo()
        costs.append(time.perf_counter() - started)

    assert guard.last_score > 0.99
    assert sorted(costs)[len(costs) // 2] < 0.020  # ~0.2 ms measured; a loose sanity bound


def test_max_normalised_correlation_basics() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(0, 1000, 4000)
    x = reference[1234 : 1234 + 1600]

    # (segment means are approximated by the global mean, hence not exactly 1)
    assert max_normalised_correlation(x, reference) == pytest.approx(1.0, abs=1e-3)
    assert max_normalised_correlation(-0.1 * x, reference) == pytest.approx(1.0, abs=1e-3)
    assert max_normalised_correlation(rng.normal(0, 1000, 1600), reference) < 0.15
    assert max_normalised_correlation(np.zeros(1600), reference) == 0.0
    assert max_normalised_correlation(x, reference[:1000]) == 0.0
    assert max_normalised_correlation(np.zeros(0), reference) == 0.0
