"""Tests for softphone.framing: SIP messages cut from a TLS/TCP byte stream by Content-Length."""

from __future__ import annotations

import pytest

from softphone.errors import SipParseError
from softphone.framing import MAX_HEADER_BYTES, StreamFramer
from softphone.message import SipMessage, parse_message


def message(body: bytes = b"", call_id: str = "c1") -> bytes:
    msg = SipMessage(method="INVITE" if body else "OPTIONS", uri="sip:1001@127.0.0.1")
    msg.add("Via", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKx")
    msg.add("Call-ID", call_id)
    msg.add("CSeq", "1 INVITE" if body else "1 OPTIONS")
    msg.body = body
    return msg.to_bytes()


def test_two_messages_in_one_chunk_come_out_whole_and_in_order() -> None:
    first, second = message(b"v=0\r\n", "a"), message(call_id="b")

    out = StreamFramer().feed(first + second)

    assert out == [first, second]
    assert [parse_message(m).call_id for m in out] == ["a", "b"]


def test_a_message_split_anywhere_waits_for_the_rest_of_its_body() -> None:
    whole = message(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    for cut in range(1, len(whole)):
        framer = StreamFramer()
        assert framer.feed(whole[:cut]) == []
        assert framer.pending == cut
        assert framer.feed(whole[cut:]) == [whole]
        assert framer.pending == 0


def test_keep_alive_crlfs_between_messages_are_skipped() -> None:
    framer = StreamFramer()

    assert framer.feed(b"\r\n\r\n") == []
    assert framer.feed(b"\r\n" + message() + b"\r\n\r\n") == [message()]
    assert framer.pending == 0


def test_compact_content_length_is_understood() -> None:
    raw = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TLS h;branch=z9hG4bK1\r\nl: 3\r\n\r\nabc"

    assert StreamFramer().feed(raw + raw) == [raw, raw]


def test_a_stream_message_without_content_length_is_an_error() -> None:
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")


def test_endless_headers_are_an_error_not_a_growing_buffer() -> None:
    framer = StreamFramer()

    with pytest.raises(SipParseError, match="no end of headers"):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-Junk: y\r\n" * (MAX_HEADER_BYTES // 10))
