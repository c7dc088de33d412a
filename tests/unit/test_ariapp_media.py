"""Tests for the socket-free parts of ariapp.calls.media: codecs and the inbound packet filter."""

from __future__ import annotations

import numpy as np
import pytest

from aipbx.audio.rtp import RtpPacket
from ariapp.calls.media import CallMedia, media_codec

ASTERISK = ("127.0.0.1", 14000)  # the external media channel's RTP address
SSRC = 0x1A2B3C4D


def tone(samples: int, rate: int = 8000, hz: float = 440.0, amplitude: int = 8000) -> np.ndarray:
    return np.round(amplitude * np.sin(2 * np.pi * hz * np.arange(samples) / rate)).astype(np.int16)


def rtp(sequence: int, payload: bytes, payload_type: int = 0) -> bytes:
    return RtpPacket(payload_type, sequence, sequence * 160, SSRC, payload).to_bytes()


@pytest.mark.parametrize(
    ("fmt", "payload_type", "rate", "frame_samples"),
    [("ulaw", 0, 8000, 160), ("alaw", 8, 8000, 160), ("slin16", None, 16000, 320)],
)
def test_media_codec_parameters(fmt: str, payload_type: int | None, rate: int, frame_samples: int) -> None:
    codec = media_codec(fmt)

    assert (codec.name, codec.payload_type, codec.sample_rate, codec.frame_samples) == (
        fmt,
        payload_type,
        rate,
        frame_samples,
    )


@pytest.mark.parametrize("fmt", ["ulaw", "alaw"])
def test_g711_round_trip_is_close_and_stable(fmt: str) -> None:
    codec = media_codec(fmt)
    pcm = tone(160)

    wire = codec.encode(pcm)
    decoded = codec.decode(wire)

    assert len(wire) == 160
    assert decoded.dtype == np.int16
    # G.711 keeps about 3 % of the amplitude as quantisation error; re-encoding is lossless
    assert np.max(np.abs(decoded.astype(int) - pcm)) <= 0.035 * 8000
    assert codec.encode(decoded) == wire


def test_ulaw_and_alaw_differ_on_the_wire() -> None:
    pcm = tone(160)

    assert media_codec("ulaw").encode(pcm) != media_codec("alaw").encode(pcm)


def test_slin16_is_big_endian_on_the_wire() -> None:
    codec = media_codec("slin16")

    assert codec.encode(np.array([1], dtype=np.int16)) == b"\x00\x01"
    assert codec.encode(np.array([-2, 0x1234], dtype=np.int16)) == b"\xff\xfe\x12\x34"
    assert codec.decode(b"\x00\x01\x80\x00").tolist() == [1, -32768]
    assert codec.decode(b"\x00\x01").dtype == np.int16


def test_slin16_round_trip_is_exact() -> None:
    codec = media_codec("slin16")
    pcm = tone(320, rate=16000, amplitude=32767)

    assert np.array_equal(codec.decode(codec.encode(pcm)), pcm)


def test_unknown_media_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown G.711 codec"):
        media_codec("opus")


def test_packets_before_the_remote_is_known_are_dropped() -> None:
    media = CallMedia(media_codec("ulaw"))

    media.datagram_received(rtp(1, b"\xff" * 160), ASTERISK)

    assert (media.stats.rx_dropped_source, media.stats.rx_packets) == (1, 0)


@pytest.mark.parametrize("source", [("127.0.0.1", 14001), ("127.0.0.2", 14000), ("10.0.0.5", 14000)])
def test_packets_from_an_unexpected_source_are_counted_and_not_played(source: tuple[str, int]) -> None:
    # given a call whose Asterisk side is 127.0.0.1:14000, e.g. RTCP of another call arriving here
    media = CallMedia(media_codec("ulaw"), jitter_ms=20)
    media.set_remote(*ASTERISK)

    # when
    for sequence in range(5):
        media.datagram_received(rtp(sequence, media.codec.encode(tone(160))), source)

    # then
    assert media.stats.rx_dropped_source == 5
    assert media.stats.rx_packets == 0
    assert media.receive_frame() is None
    assert media.first_rx_at is None


def test_wrong_payload_type_is_counted_and_not_played() -> None:
    media = CallMedia(media_codec("ulaw"), jitter_ms=20)
    media.set_remote(*ASTERISK)

    media.datagram_received(rtp(1, b"\xd5" * 160, payload_type=8), ASTERISK)
    media.datagram_received(rtp(2, b"\x00" * 4, payload_type=13), ASTERISK)  # comfort noise

    assert media.stats.rx_dropped_payload_type == 2
    assert media.stats.rx_packets == 0
    assert media.receive_frame() is None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\x00", b"\x00" * 172, b"\x8f\x00" + b"\x00" * 20, b"\xa0\x00" + b"\x00" * 10 + b"\x00"],
    ids=["empty", "truncated", "version0", "csrc_overflow", "padding_zero"],
)
def test_malformed_packets_are_counted(data: bytes) -> None:
    media = CallMedia(media_codec("ulaw"))
    media.set_remote(*ASTERISK)

    media.datagram_received(data, ASTERISK)

    assert media.stats.rx_malformed == 1
    assert media.stats.rx_packets == 0


def test_good_packets_reach_the_jitter_buffer() -> None:
    # given a 40 ms jitter buffer (two frames)
    codec = media_codec("ulaw")
    media = CallMedia(codec, jitter_ms=40)
    media.set_remote(*ASTERISK)
    frames = [codec.decode(codec.encode(tone(160, hz=hz))) for hz in (300, 500, 700)]

    # when the first packet arrives, the buffer is still filling
    media.datagram_received(rtp(100, codec.encode(frames[0])), ASTERISK)
    assert media.receive_frame() is None

    # when more arrive, the caller's audio comes out in order
    media.datagram_received(rtp(101, codec.encode(frames[1])), ASTERISK)
    media.datagram_received(rtp(102, codec.encode(frames[2])), ASTERISK)
    played = [media.receive_frame() for _ in range(3)]

    for got, want in zip(played, frames, strict=True):
        assert np.array_equal(got, want)
    assert media.stats.rx_packets == 3
    assert media.first_rx_at is not None


def test_ipv6_source_with_flow_info_matches() -> None:
    media = CallMedia(media_codec("alaw"))
    media.set_remote("::1", 14000)

    media.datagram_received(rtp(1, b"\xd5" * 160, payload_type=8), ("::1", 14000, 0, 0))

    assert media.stats.rx_packets == 1


def test_slin16_learns_the_payload_type_from_the_expected_source() -> None:
    # given slin16, whose dynamic payload type Asterisk picks
    codec = media_codec("slin16")
    media = CallMedia(codec, jitter_ms=20)
    media.set_remote(*ASTERISK)
    pcm = tone(320, rate=16000)

    # when a stray packet with another type arrives from elsewhere, then Asterisk's own packets
    media.datagram_received(rtp(1, codec.encode(pcm), payload_type=96), ("127.0.0.1", 14001))
    media.datagram_received(b"\x80", ASTERISK)
    media.datagram_received(rtp(1, codec.encode(pcm), payload_type=118), ASTERISK)
    media.datagram_received(rtp(2, codec.encode(pcm), payload_type=96), ASTERISK)

    # then the type is learnt from Asterisk's first valid packet only
    assert media.stats.rx_packets == 1
    assert media.stats.rx_dropped_payload_type == 1
    assert np.array_equal(media.receive_frame(), pcm)


def test_send_without_a_socket_does_not_raise_or_count() -> None:
    media = CallMedia(media_codec("ulaw"))

    media.send_frame(tone(160))
    media.send_frame(None)

    assert media.stats.tx_packets == 0
