"""Tests for aipbx.audio.rtp: parsing, serialisation and sequence arithmetic."""

from __future__ import annotations

import random
import struct

import pytest

from aipbx.audio.rtp import RTP_HEADER_MIN, RtpPacket, RtpParseError, parse_rtp, seq_delta

# A PCMU packet as Asterisk sends it: V=2, no P/X/CC, M=1, PT=0, seq 0x1234,
# ts 0x000000a0, SSRC 0xdeadbeef, 160 bytes of ulaw silence.
PCMU_PACKET = bytes.fromhex("80801234000000a0deadbeef") + b"\xff" * 160


def test_parse_known_bytes() -> None:
    packet = parse_rtp(PCMU_PACKET)

    assert packet == RtpPacket(
        payload_type=0, sequence=0x1234, timestamp=0xA0, ssrc=0xDEADBEEF, payload=b"\xff" * 160, marker=True
    )
    assert packet.header_length == RTP_HEADER_MIN


def test_serialise_known_bytes() -> None:
    packet = RtpPacket(0, 0x1234, 0xA0, 0xDEADBEEF, b"\xff" * 160, marker=True)

    assert packet.to_bytes() == PCMU_PACKET


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(8, 0, 0, 0, b""),
        RtpPacket(127, 65535, 0xFFFFFFFF, 0xFFFFFFFF, b"\x01\x02\x03", marker=True),
        RtpPacket(0, 7, 160, 42, b"abc", csrc=(1, 2, 0xFFFFFFFF)),
        RtpPacket(0, 7, 160, 42, b"abc", csrc=tuple(range(15))),
        RtpPacket(0, 7, 160, 42, b"abc", extension_profile=0xBEDE, extension_data=b"\x10\xaa\x00\x00"),
        RtpPacket(0, 7, 160, 42, b"abc", extension_profile=0x1000, extension_data=b""),
        RtpPacket(0, 7, 160, 42, b"abc", padding=1),
        RtpPacket(0, 7, 160, 42, b"abc", padding=255),
        RtpPacket(0, 7, 160, 42, b"", padding=4),
        RtpPacket(
            96,
            1,
            2,
            3,
            b"payload",
            marker=True,
            csrc=(9,),
            extension_profile=1,
            extension_data=b"12345678",
            padding=3,
        ),
    ],
)
def test_round_trip(packet: RtpPacket) -> None:
    data = packet.to_bytes()

    assert parse_rtp(data) == packet
    assert len(data) == packet.header_length + len(packet.payload) + packet.padding


def test_header_length_counts_csrc() -> None:
    # given a packet with 3 CSRCs: payload must start at 12 + 4*3, not at 12
    data = bytes([0x83, 0x00]) + struct.pack("!HII", 1, 2, 3) + struct.pack("!3I", 10, 11, 12) + b"PAY"

    # when
    packet = parse_rtp(data)

    # then
    assert packet.csrc == (10, 11, 12)
    assert packet.payload == b"PAY"
    assert packet.header_length == 24


def test_extension_is_skipped_from_payload() -> None:
    data = bytes([0x90, 0x08]) + struct.pack("!HII", 1, 2, 3) + struct.pack("!HH", 0xBEDE, 2) + b"E" * 8 + b"PAY"

    packet = parse_rtp(data)

    assert packet.extension_profile == 0xBEDE
    assert packet.extension_data == b"E" * 8
    assert packet.payload == b"PAY"
    assert packet.payload_type == 8


def test_padding_is_stripped() -> None:
    # P bit set, 4 padding bytes whose last one holds the count
    data = bytes([0xA0, 0x00]) + struct.pack("!HII", 1, 2, 3) + b"PAY" + b"\x00\x00\x00\x04"

    packet = parse_rtp(data)

    assert packet.payload == b"PAY"
    assert packet.padding == 4


def test_padding_serialisation_sets_p_bit_and_count() -> None:
    data = RtpPacket(0, 1, 2, 3, b"X", padding=3).to_bytes()

    assert data[0] & 0x20
    assert data[-1] == 3
    assert data[-3:-1] == b"\x00\x00"


def _header(first: int = 0x80, second: int = 0) -> bytes:
    return bytes([first, second]) + struct.pack("!HII", 1, 2, 3)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (PCMU_PACKET[:11], "truncated"),
        (bytes([0x40]) + PCMU_PACKET[1:], "version"),
        (bytes([0x00]) + PCMU_PACKET[1:], "version"),
        (bytes([0xC0]) + PCMU_PACKET[1:], "version"),
        (_header(0x81), "csrc_overflow"),
        (_header(0x8F) + b"\x00" * 56, "csrc_overflow"),
        (_header(0x90), "extension_truncated"),
        (_header(0x90) + b"\xbe\xde", "extension_truncated"),
        (_header(0x90) + struct.pack("!HH", 0xBEDE, 2) + b"\x00" * 7, "extension_truncated"),
        (_header(0xA0) + b"PAY\x00", "padding"),
        (_header(0xA0) + b"PAY\x05", "padding"),
        (_header(0xA0) + b"\xff", "padding"),
        (_header(0xB0) + struct.pack("!HH", 1, 1) + b"\x00\x00\x00\x05", "padding"),
    ],
)
def test_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError) as info:
        parse_rtp(data)

    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_padding_may_consume_whole_payload() -> None:
    packet = parse_rtp(_header(0xA0) + b"\x00\x00\x03")

    assert packet.payload == b""
    assert packet.padding == 3


def test_full_csrc_list_exactly_fits() -> None:
    packet = parse_rtp(_header(0x8F) + b"\x00" * 60)

    assert len(packet.csrc) == 15
    assert packet.payload == b""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"sequence": 65536},
        {"sequence": -1},
        {"timestamp": 1 << 32},
        {"ssrc": -1},
        {"padding": 256},
        {"csrc": tuple(range(16))},
        {"csrc": (1 << 32,)},
        {"extension_profile": 1, "extension_data": b"abc"},
        {"extension_profile": 1 << 16},
        {"extension_data": b"abcd"},
    ],
)
def test_invalid_fields_are_rejected(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, "payload": b""}
    fields.update(kwargs)

    with pytest.raises(ValueError):
        RtpPacket(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (0, 0, 0),
        (10, 11, 1),
        (11, 10, -1),
        (65535, 0, 1),
        (0, 65535, -1),
        (65530, 4, 10),
        (4, 65530, -10),
        (0, 32767, 32767),
        (0, 32768, -32768),
        (100, 100 + 32768, -32768),
    ],
)
def test_seq_delta(a: int, b: int, expected: int) -> None:
    assert seq_delta(a, b) == expected


def test_seq_delta_range_over_all_values() -> None:
    for b in range(0, 65536, 7):
        delta = seq_delta(40000, b)
        assert -32768 <= delta <= 32767
        assert (40000 + delta) & 0xFFFF == b


def test_fuzz_random_bytes_only_raise_parse_error() -> None:
    rng = random.Random(20240601)
    valid = 0
    for _ in range(20_000):
        length = rng.randrange(0, 80)
        data = bytearray(rng.getrandbits(8) for _ in range(length))
        if data and rng.random() < 0.75:
            # force version 2 most of the time so the deeper checks get exercised
            data[0] = (data[0] & 0x3F) | 0x80
        try:
            packet = parse_rtp(bytes(data))
        except RtpParseError:
            continue
        valid += 1
        assert parse_rtp(packet.to_bytes()) == packet
        assert len(packet.to_bytes()) == len(data)
    # the loop must actually reach successful parses, or it tests nothing past the version check
    assert valid > 1000
