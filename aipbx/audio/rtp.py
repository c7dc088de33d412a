"""RTP packet parsing and serialisation (RFC 3550, section 5.1).

A pure core: bytes in, :class:`RtpPacket` out, and back. No sockets here; the
media socket owner calls :func:`parse_rtp` on every datagram and counts and drops
packets that raise :class:`RtpParseError`, so a malformed packet never ends a call.

Wire layout of the fixed header::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                             SSRC                              |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |                  CSRC list (CC x 32 bits)                     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The header is therefore ``12 + 4*CC`` bytes, followed by an optional extension
(4 bytes of profile/length, then ``4*length`` bytes), then the payload, then
optional padding whose count is the last byte of the datagram.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_MIN",
    "RTP_VERSION",
    "RtpPacket",
    "RtpParseError",
    "parse_rtp",
    "seq_delta",
]

RTP_HEADER_MIN = 12
RTP_VERSION = 2

_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")
_MAX_CSRC = 15


class RtpParseError(ValueError):
    """A datagram is not a valid RTP packet.

    Attributes:
        reason: Short machine-readable reason, usable as a metrics label:
            ``"truncated"``, ``"version"``, ``"csrc_overflow"``,
            ``"extension_truncated"`` or ``"padding"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet.

    Attributes:
        payload_type: 7-bit payload type (0 = PCMU, 8 = PCMA).
        sequence: 16-bit sequence number.
        timestamp: 32-bit media timestamp, in samples of the payload clock.
        ssrc: 32-bit synchronisation source.
        payload: Payload bytes, without header, extension or padding.
        marker: The M bit (first packet of a talkspurt for audio).
        csrc: Contributing sources, at most 15.
        extension_profile: 16-bit profile of the header extension, or ``None``
            when the X bit is clear.
        extension_data: Extension body; its length is a multiple of 4.
        padding: Number of padding bytes including the count byte (0 = none).
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension_data: bytes = b""
    padding: int = 0

    def __post_init__(self) -> None:
        _check_range("payload_type", self.payload_type, 0x7F)
        _check_range("sequence", self.sequence, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFFFFFF)
        _check_range("ssrc", self.ssrc, 0xFFFFFFFF)
        _check_range("padding", self.padding, 0xFF)
        if len(self.csrc) > _MAX_CSRC:
            raise ValueError(f"at most {_MAX_CSRC} CSRCs, got {len(self.csrc)}")
        for source in self.csrc:
            _check_range("csrc", source, 0xFFFFFFFF)
        if self.extension_profile is None:
            if self.extension_data:
                raise ValueError("extension_data requires extension_profile")
        else:
            _check_range("extension_profile", self.extension_profile, 0xFFFF)
            if len(self.extension_data) % 4:
                raise ValueError("extension_data length must be a multiple of 4")
            if len(self.extension_data) // 4 > 0xFFFF:
                raise ValueError("extension_data too long")

    @property
    def header_length(self) -> int:
        """Bytes before the payload: fixed header, CSRC list and extension."""
        length = RTP_HEADER_MIN + 4 * len(self.csrc)
        if self.extension_profile is not None:
            length += 4 + len(self.extension_data)
        return length

    def to_bytes(self) -> bytes:
        """Serialise the packet.

        Returns:
            The datagram. With ``padding > 0`` the P bit is set and ``padding``
            bytes are appended: zeros followed by the count in the last byte.
        """
        has_ext = self.extension_profile is not None
        first = (RTP_VERSION << 6) | (0x20 if self.padding else 0) | (0x10 if has_ext else 0)
        first |= len(self.csrc)
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXT_HEADER.pack(self.extension_profile, len(self.extension_data) // 4))
            parts.append(self.extension_data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram.

    Args:
        data: The UDP payload as received.

    Returns:
        The decoded packet; ``payload`` excludes header, extension and padding.

    Raises:
        RtpParseError: The datagram is truncated, is not version 2, announces
            more CSRCs or extension words than it carries, or has an invalid
            padding count.
    """
    data = bytes(data)
    if len(data) < RTP_HEADER_MIN:
        raise RtpParseError("truncated", f"{len(data)} bytes, need at least {RTP_HEADER_MIN}")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpParseError("version", f"version {version}, expected {RTP_VERSION}")
    has_padding = bool(first & 0x20)
    has_ext = bool(first & 0x10)
    csrc_count = first & 0x0F

    offset = RTP_HEADER_MIN + 4 * csrc_count
    if offset > len(data):
        raise RtpParseError("csrc_overflow", f"{csrc_count} CSRCs do not fit in {len(data)} bytes")
    csrc = struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_MIN) if csrc_count else ()

    extension_profile: int | None = None
    extension_data = b""
    if has_ext:
        if offset + 4 > len(data):
            raise RtpParseError("extension_truncated", "extension header missing")
        extension_profile, words = _EXT_HEADER.unpack_from(data, offset)
        offset += 4
        if offset + 4 * words > len(data):
            raise RtpParseError("extension_truncated", f"extension of {words} words does not fit")
        extension_data = data[offset : offset + 4 * words]
        offset += 4 * words

    end = len(data)
    padding = 0
    if has_padding:
        # RFC 3550: the last octet counts the padding octets including itself, so 0 is invalid,
        # and padding may not eat into the header.
        padding = data[-1]
        if padding == 0 or offset + padding > len(data):
            raise RtpParseError("padding", f"padding count {padding} invalid for {len(data)} bytes")
        end -= padding

    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[offset:end],
        marker=bool(second & 0x80),
        csrc=tuple(csrc),
        extension_profile=extension_profile,
        extension_data=extension_data,
        padding=padding,
    )


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence number ``a`` to ``b`` modulo 2**16.

    Args:
        a: Reference sequence number.
        b: Other sequence number.

    Returns:
        ``b - a`` folded into ``[-32768, 32767]``; e.g. ``seq_delta(65535, 0) == 1``.
    """
    return ((b - a + 0x8000) & 0xFFFF) - 0x8000


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be in [0, {maximum}], got {value}")
