"""Tests for aipbx.audio.resample: frequency preservation, anti-aliasing, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from aipbx.audio.resample import StreamResampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 16000) -> np.ndarray:
    n = np.arange(int(rate * seconds))
    return np.round(amplitude * np.sin(2 * np.pi * freq * n / rate)).astype(np.int16)


def peak_hz(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[np.argmax(spectrum)])


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def stream_all(resampler: StreamResampler, pcm: np.ndarray, chunk: int) -> list[np.ndarray]:
    chunks = [resampler.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk)]
    return [*chunks, resampler.flush()]


def sine_residual_db(pcm: np.ndarray, freq: float, rate: int) -> float:
    """Energy left after removing the best-fitting sinusoid at ``freq``, relative to the signal."""
    n = np.arange(len(pcm))
    basis = np.stack([np.sin(2 * np.pi * freq * n / rate), np.cos(2 * np.pi * freq * n / rate), np.ones(len(n))], 1)
    signal = pcm.astype(np.float64)
    coefficients, *_ = np.linalg.lstsq(basis, signal, rcond=None)
    residual = signal - basis @ coefficients
    return 10 * np.log10(np.sum(residual**2) / np.sum(signal**2))


def test_one_khz_survives_8k_16k_8k() -> None:
    original = tone(1000, 8000)

    up = resample(original, 8000, 16000)
    back = resample(up, 16000, 8000)

    assert up.dtype == back.dtype == np.int16
    assert len(up) == 16000 and len(back) == 8000
    assert peak_hz(up, 16000) == pytest.approx(1000, abs=2)
    assert peak_hz(back, 8000) == pytest.approx(1000, abs=2)
    assert rms(back[400:-400]) == pytest.approx(rms(original), rel=0.02)


def test_five_khz_at_16k_is_filtered_out_when_going_to_8k() -> None:
    # 5 kHz is above the 4 kHz Nyquist of 8k; without a filter it would alias to 3 kHz at full level
    alias_source = tone(5000, 16000)

    out = resample(alias_source, 16000, 8000)

    attenuation_db = 20 * np.log10(max(rms(out), 1e-9) / rms(alias_source))
    assert attenuation_db <= -40


def test_naive_decimation_would_alias() -> None:
    # guards the test above: the same signal decimated without a filter keeps its energy
    alias_source = tone(5000, 16000)

    naive = alias_source[::2]

    assert 20 * np.log10(rms(naive) / rms(alias_source)) > -1
    assert peak_hz(naive, 8000) == pytest.approx(3000, abs=2)


def test_stream_five_khz_is_filtered_too() -> None:
    alias_source = tone(5000, 16000)

    out = np.concatenate(stream_all(StreamResampler(16000, 8000), alias_source, 320))

    assert 20 * np.log10(max(rms(out), 1e-9) / rms(alias_source)) <= -40


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000), (24000, 8000), (22050, 8000)])
def test_stream_total_length_matches_ratio(in_rate: int, out_rate: int) -> None:
    pcm = tone(440, in_rate, seconds=2.0)

    chunks = stream_all(StreamResampler(in_rate, out_rate), pcm, in_rate // 50)

    total = sum(len(chunk) for chunk in chunks)
    assert abs(total - len(pcm) * out_rate / in_rate) <= 2
    assert all(chunk.dtype == np.int16 for chunk in chunks)


def test_stream_emits_every_frame_after_a_short_start_up() -> None:
    resampler = StreamResampler(8000, 16000)
    pcm = tone(1000, 8000)

    lengths = [len(resampler.process(pcm[i : i + 160])) for i in range(0, 8000, 160)]

    # at most two 20 ms frames of start-up delay, then one output frame per input frame, no bursts
    assert sum(lengths[:3]) > 0
    assert set(lengths[3:]) == {320}


def test_stream_is_continuous_across_frame_boundaries() -> None:
    # given a 1 kHz tone fed in 20 ms frames
    pcm = tone(1000, 8000, seconds=1.0, amplitude=10000)

    # when streamed
    out = np.concatenate(stream_all(StreamResampler(8000, 16000), pcm, 160))

    # then the output is still a clean sinusoid: frame edges would show up as broadband clicks
    steady = out[1000:-1000]
    assert peak_hz(out, 16000) == pytest.approx(1000, abs=2)
    assert sine_residual_db(steady, 1000, 16000) < -50


def test_stateless_per_frame_resampling_is_detectably_worse() -> None:
    # guards the test above: resampling each frame independently breaks continuity
    pcm = tone(1000, 8000, seconds=1.0, amplitude=10000)

    out = np.concatenate([resample(pcm[i : i + 160], 8000, 16000) for i in range(0, 8000, 160)])

    assert sine_residual_db(out[1000:-1000], 1000, 16000) > -50


def test_flush_resets_for_a_new_stream() -> None:
    resampler = StreamResampler(16000, 8000)
    pcm = tone(1000, 16000, seconds=0.5)

    first = sum(len(chunk) for chunk in stream_all(resampler, pcm, 320))
    second = sum(len(chunk) for chunk in stream_all(resampler, pcm, 320))

    assert first == second
    assert abs(first - 4000) <= 2


def test_equal_rates_are_identity() -> None:
    pcm = tone(1000, 8000, seconds=0.1)
    resampler = StreamResampler(8000, 8000)

    one_shot = resample(pcm, 8000, 8000)
    streamed = resampler.process(pcm)

    assert np.array_equal(one_shot, pcm) and np.array_equal(streamed, pcm)
    assert not np.shares_memory(one_shot, pcm)
    assert len(resampler.flush()) == 0
    assert resampler.ratio == 1.0


def test_empty_input() -> None:
    assert len(resample(np.zeros(0, dtype=np.int16), 8000, 16000)) == 0
    assert len(StreamResampler(8000, 16000).process(np.zeros(0, dtype=np.int16))) == 0


def test_rejects_wrong_dtype_and_rates() -> None:
    with pytest.raises(TypeError):
        resample(np.zeros(10, dtype=np.float32), 8000, 16000)
    with pytest.raises(TypeError):
        StreamResampler(8000, 16000).process(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(ValueError):
        resample(np.zeros(10, dtype=np.int16), 0, 16000)
    with pytest.raises(ValueError):
        StreamResampler(8000, -1)
