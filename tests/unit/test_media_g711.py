"""Tests for aipbx.audio.g711, checked bit for bit against CPython's audioop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aipbx.audio import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # removed in 3.13; the reference implementation while it exists

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_matches_audioop_for_every_sample() -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)


def test_alaw_encode_matches_audioop_for_every_sample() -> None:
    assert g711.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES.tobytes(), 2)


def test_ulaw_decode_matches_audioop_for_every_code() -> None:
    decoded = g711.ulaw_decode(ALL_CODES)

    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_for_every_code() -> None:
    decoded = g711.alaw_decode(ALL_CODES)

    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.alaw2lin(ALL_CODES, 2)


def test_itu_table_spot_values() -> None:
    # Extremes of the G.711 tables scaled to 16 bits: mu-law +-8031 (14-bit), A-law +-4032 (13-bit).
    assert g711.ulaw_decode(b"\x80\x00\xff\x7f").tolist() == [32124, -32124, 0, 0]
    assert g711.alaw_decode(b"\xaa\x2a\xd5\x55").tolist() == [32256, -32256, 8, -8]


def test_silence_bytes_encode_zero() -> None:
    zero = np.zeros(160, dtype=np.int16)

    assert g711.ulaw_encode(zero) == bytes([g711.ULAW_SILENCE]) * 160
    assert g711.alaw_encode(zero) == bytes([g711.ALAW_SILENCE]) * 160
    assert not g711.ulaw_decode(bytes([g711.ULAW_SILENCE])).any()
    assert abs(int(g711.alaw_decode(bytes([g711.ALAW_SILENCE]))[0])) <= 8


@pytest.mark.parametrize(
    ("encode", "decode"), [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)]
)
def test_decode_then_encode_is_identity_on_codes(encode, decode) -> None:  # type: ignore[no-untyped-def]
    # Every code decodes to a value that re-encodes to itself, except the
    # mu-law negative zero 0x7f, which decodes to 0 and re-encodes as 0xff.
    reencoded = encode(decode(ALL_CODES))
    differing = [code for code, again in zip(ALL_CODES, reencoded, strict=True) if code != again]

    assert differing in ([], [0x7F])


def test_encode_works_on_2d_views_and_slices() -> None:
    stereo = np.stack([ALL_SAMPLES[:100], ALL_SAMPLES[-100:]], axis=1)

    assert g711.ulaw_encode(stereo[:, 1]) == g711.ulaw_encode(ALL_SAMPLES[-100:].copy())


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.dtype(">i2") if np.little_endian else np.dtype("<i2")])
def test_encode_refuses_non_native_int16(dtype: np.dtype) -> None:
    with pytest.raises(TypeError):
        g711.ulaw_encode(np.zeros(4, dtype=dtype))
    with pytest.raises(TypeError):
        g711.alaw_encode(np.zeros(4, dtype=dtype))


def test_empty_input() -> None:
    assert g711.ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert g711.alaw_decode(b"").shape == (0,)


@pytest.mark.parametrize(
    ("name", "expected_name", "payload_type", "silence"),
    [
        ("ulaw", "ulaw", 0, 0xFF),
        ("PCMU", "ulaw", 0, 0xFF),
        ("pcmu", "ulaw", 0, 0xFF),
        ("ALAW", "alaw", 8, 0xD5),
        ("PcmA", "alaw", 8, 0xD5),
    ],
)
def test_codec_for(name: str, expected_name: str, payload_type: int, silence: int) -> None:
    codec = g711.codec_for(name)

    assert codec.name == expected_name
    assert codec.payload_type == payload_type
    assert codec.silence_byte == silence
    assert codec.silence(3) == bytes([silence]) * 3
    tone = (8000 * np.sin(np.arange(160) / 5)).astype(np.int16)
    reference = audioop.lin2ulaw if expected_name == "ulaw" else audioop.lin2alaw
    assert codec.encode(tone) == reference(tone.tobytes(), 2)
    # |x| < 8192 lies in segment 5 or below: step 256, so the error is at most half a step
    error = np.abs(codec.decode(codec.encode(tone)).astype(np.int32) - tone)
    assert error.max() <= 128


@pytest.mark.parametrize("name", ["", "g722", "slin16", "ulaw8"])
def test_codec_for_unknown(name: str) -> None:
    with pytest.raises(ValueError):
        g711.codec_for(name)
