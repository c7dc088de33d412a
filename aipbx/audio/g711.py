"""G.711 mu-law and A-law codecs built on numpy lookup tables.

``audioop`` is gone in Python 3.13, so the codec is table driven: decoding
indexes a 256-entry int16 table with the code bytes, encoding indexes a
65536-entry uint8 table with the ``uint16`` view of each int16 sample. The
tables are computed once at import with the segment arithmetic of the classic
Sun Microsystems ``g711.c`` (the code CPython's ``audioop`` used), which
reproduces the ITU-T G.711 tables; the unit tests check every code and every
sample against ``audioop`` bit for bit.

Samples are native-endian int16 numpy arrays. Big-endian ``slin16`` from
Asterisk external media must be byte-swapped by the caller before encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_SILENCE",
    "PCMA",
    "PCMU",
    "ULAW_SILENCE",
    "G711Codec",
    "alaw_decode",
    "alaw_encode",
    "codec_for",
    "ulaw_decode",
    "ulaw_encode",
]

# Code bytes that decode to (near) zero; these are what a silent G.711 line carries.
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

Pcm = npt.NDArray[np.int16]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # in 14-bit units, i.e. 32635 >> 2


def _build_ulaw_decode() -> Pcm:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decode() -> Pcm:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    magnitude = np.where(
        segment == 0,
        mantissa + 8,
        (mantissa + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _all_samples() -> npt.NDArray[np.int32]:
    # Index i of an encode table is the uint16 view of the int16 sample.
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 2  # mu-law works on 14-bit samples
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_ends, value, side="left")
    code = np.where(
        segment >= 8,
        0x7F,
        (segment << 4) | ((value >> (np.minimum(segment, 7) + 1)) & 0x0F),
    )
    table: npt.NDArray[np.uint8] = (code ^ mask).astype(np.uint8)
    return table


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 3  # A-law works on 13-bit samples
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5)
    # One's complement magnitude for negatives: -1 maps to 0, which keeps A-law symmetric.
    value = np.where(negative, -value - 1, value)
    segment_ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    segment = np.searchsorted(segment_ends, value, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((value >> shift) & 0x0F))
    table: npt.NDArray[np.uint8] = (code ^ mask).astype(np.uint8)
    return table


_ULAW_TO_PCM = _build_ulaw_decode()
_ALAW_TO_PCM = _build_alaw_decode()
_PCM_TO_ULAW = _build_ulaw_encode()
_PCM_TO_ALAW = _build_alaw_encode()


def _as_codes(data: bytes) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def _as_index(pcm: Pcm) -> npt.NDArray[np.uint16]:
    array = np.asarray(pcm)
    if array.dtype != np.dtype(np.int16):
        # Refuse rather than cast: a float or big-endian array would silently wrap into noise.
        raise TypeError(f"expected native int16 samples, got {array.dtype}")
    return array.view(np.uint16)


def ulaw_decode(data: bytes) -> Pcm:
    """Decode mu-law bytes.

    Args:
        data: One code byte per sample.

    Returns:
        int16 samples, one per input byte.
    """
    return _ULAW_TO_PCM[_as_codes(data)]


def ulaw_encode(pcm: Pcm) -> bytes:
    """Encode int16 samples to mu-law.

    Args:
        pcm: Native-endian int16 samples.

    Returns:
        One code byte per sample.

    Raises:
        TypeError: ``pcm`` is not int16.
    """
    return _PCM_TO_ULAW[_as_index(pcm)].tobytes()


def alaw_decode(data: bytes) -> Pcm:
    """Decode A-law bytes.

    Args:
        data: One code byte per sample.

    Returns:
        int16 samples, one per input byte.
    """
    return _ALAW_TO_PCM[_as_codes(data)]


def alaw_encode(pcm: Pcm) -> bytes:
    """Encode int16 samples to A-law.

    Args:
        pcm: Native-endian int16 samples.

    Returns:
        One code byte per sample.

    Raises:
        TypeError: ``pcm`` is not int16.
    """
    return _PCM_TO_ALAW[_as_index(pcm)].tobytes()


@dataclass(frozen=True, slots=True)
class G711Codec:
    """One G.711 variant as used on an RTP stream.

    Attributes:
        name: ``"ulaw"`` or ``"alaw"`` (Asterisk's format names).
        payload_type: Static RTP payload type (0 = PCMU, 8 = PCMA).
        decode: Bytes to int16 samples.
        encode: int16 samples to bytes.
        silence_byte: Code byte of digital silence.
        sample_rate: Always 8000.
    """

    name: str
    payload_type: int
    decode: Callable[[bytes], Pcm]
    encode: Callable[[Pcm], bytes]
    silence_byte: int
    sample_rate: int = 8000

    def silence(self, samples: int) -> bytes:
        """Return ``samples`` bytes of encoded silence."""
        return bytes((self.silence_byte,)) * samples


PCMU = G711Codec("ulaw", 0, ulaw_decode, ulaw_encode, ULAW_SILENCE)
PCMA = G711Codec("alaw", 8, alaw_decode, alaw_encode, ALAW_SILENCE)

_BY_NAME = {"ulaw": PCMU, "pcmu": PCMU, "alaw": PCMA, "pcma": PCMA}


def codec_for(name: str) -> G711Codec:
    """Look up a codec by Asterisk or SDP name.

    Args:
        name: ``"ulaw"``, ``"pcmu"``, ``"alaw"`` or ``"pcma"``, any case.

    Returns:
        The matching codec.

    Raises:
        ValueError: The name is not a G.711 variant.
    """
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown G.711 codec {name!r}; expected one of ulaw, pcmu, alaw, pcma") from None
