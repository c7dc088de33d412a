"""Pure-core tests of the softphone: SIP parser/builder, digest maths, SDP, audio helpers."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from softphone.audio import (
    EchoLine,
    PlayoutQueue,
    TimedFrame,
    dtmf_payload,
    parse_dtmf_payload,
    place_on_timeline,
    tone,
)
from softphone.auth import authorization_value, parse_auth_params, parse_challenge, pick_challenge
from softphone.dialog import Dialog
from softphone.errors import SipParseError
from softphone.message import (
    NameAddr,
    SipMessage,
    SipUri,
    Via,
    canonical_name,
    make_response,
    parse_message,
)
from softphone.sdp import LocalSdp, answer_for, negotiate, parse_sdp
from softphone.transaction import build_non2xx_ack, reply_address
from softphone.wav import load_wav, save_wav

ASTERISK_INVITE = (
    "INVITE sip:1002@127.0.0.1:40312 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPjabc\r\n"
    'From: "Alice" <sip:1001@127.0.0.1>;tag=f00\r\n'
    "To: <sip:1002@127.0.0.1>\r\n"
    "Contact: <sip:asterisk@127.0.0.1:5060>\r\n"
    "Call-ID: 1234@asterisk\r\n"
    "CSeq: 29181 INVITE\r\n"
    "Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {len}\r\n"
    "\r\n"
)
ASTERISK_SDP = (
    "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=Asterisk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 10022 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:140\r\n"
    "a=sendrecv\r\n"
)


def asterisk_invite() -> bytes:
    body = ASTERISK_SDP.encode()
    return ASTERISK_INVITE.format(len=len(body)).encode() + body


# --- SIP parser -----------------------------------------------------------------------------
def test_parse_request_fields_and_body() -> None:
    msg = parse_message(asterisk_invite() + b"garbage after content-length")
    assert msg.is_request and msg.method == "INVITE"
    assert msg.uri == "sip:1002@127.0.0.1:40312"
    assert msg.call_id == "1234@asterisk"
    assert msg.cseq == (29181, "INVITE")
    assert msg.from_addr.tag == "f00" and msg.from_addr.display == "Alice"
    assert msg.to_addr.tag is None
    assert msg.top_via.branch == "z9hG4bKPjabc" and "rport" in msg.top_via.params
    assert msg.body == ASTERISK_SDP.encode()
    assert msg.get_all("Allow")[:2] == ["OPTIONS", "REGISTER"]


def test_parse_compact_forms_case_and_folding() -> None:
    raw = (
        b"sip/2.0 180 Ringing\n"
        b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\n"
        b"f: <sip:a@x>;tag=1\n"
        b"t: <sip:b@x>\n"
        b" ;tag=2\n"
        b"i: abc\n"
        b"cSeQ: 7 INVITE\n"
        b"m: <sip:b@10.0.0.3:5070>\n"
        b"SUBJECT:\tmulti\n"
        b"\tline value\n"
        b"l: 0\n\n"
    )
    msg = parse_message(raw)
    assert msg.status == 180 and msg.reason == "Ringing"
    assert [v.host for v in msg.vias] == ["10.0.0.1", "10.0.0.2"]
    assert msg.vias[1].port is None
    assert msg.to_addr.tag == "2"
    assert msg.call_id == "abc" and msg.get("call-id") == "abc" and msg.get("I") == "abc"
    assert msg.cseq == (7, "INVITE")
    assert NameAddr.parse(msg.get("Contact") or "").uri == "sip:b@10.0.0.3:5070"
    assert msg.get("Subject") == "multi line value"
    assert msg.body == b""


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"HELLO WORLD\r\n\r\n",
        b"SIP/2.0 200 OK\r\nbad header line\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"INVITE sip:x SIP/2.0\r\nContent-Length: x\r\n\r\n",
    ],
)
def test_parse_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(raw)


def test_canonical_names() -> None:
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("WWW-AUTHENTICATE") == "WWW-Authenticate"
    assert canonical_name("l") == "Content-Length"
    assert canonical_name("record-route") == "Record-Route"


def test_message_roundtrip_sets_content_length() -> None:
    msg = SipMessage(method="OPTIONS", uri="sip:x@y", headers=[("v", "SIP/2.0/UDP h:1;branch=z9hG4bKx")])
    msg.add("Content-Length", "999")
    msg.body = b"abc"
    wire = msg.to_bytes()
    assert wire.count(b"Content-Length") == 1 and b"Content-Length: 3\r\n\r\nabc" in wire
    assert wire.startswith(b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bKx\r\n")
    assert parse_message(wire).body == b"abc"


def test_name_addr_forms() -> None:
    bare = NameAddr.parse("sip:1001@host;tag=abc")
    assert bare.uri == "sip:1001@host" and bare.tag == "abc"
    quoted = NameAddr.parse('"Doe, John" <sip:j@h;transport=udp>;tag=9;x')
    assert quoted.display == "Doe, John" and quoted.uri == "sip:j@h;transport=udp"
    assert quoted.params == {"tag": "9", "x": None}
    assert str(quoted.with_tag("z")) == '"Doe, John" <sip:j@h;transport=udp>;tag=z;x'


def test_uri_and_via_parse() -> None:
    uri = SipUri.parse("sip:1002@127.0.0.1:40312;transport=udp")
    assert (uri.user, uri.host, uri.port, uri.params) == ("1002", "127.0.0.1", 40312, {"transport": "udp"})
    assert SipUri.parse("sip:example.com").address() == ("example.com", 5060)
    with pytest.raises(SipParseError):
        SipUri.parse("tel:+123")
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKx;received=1.2.3.4")
    assert (via.host, via.port, via.branch) == ("192.0.2.1", 5070, "z9hG4bKx")
    assert via.params["received"] == "1.2.3.4"


def test_make_response_copies_dialog_headers() -> None:
    invite = parse_message(asterisk_invite())
    invite.add("Record-Route", "<sip:proxy;lr>")
    ringing = make_response(invite, 180, to_tag="t1")
    assert ringing.to_addr.tag == "t1" and ringing.get_all("Record-Route") == ["<sip:proxy;lr>"]
    assert ringing.get("Via") == invite.get("Via") and ringing.cseq == (29181, "INVITE")
    assert make_response(invite, 100, to_tag="t1").to_addr.tag is None


def test_reply_address_uses_rport_or_via_port() -> None:
    invite = parse_message(asterisk_invite())
    assert reply_address(invite, ("127.0.0.1", 6000)) == ("127.0.0.1", 6000)
    invite.set("Via", "SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bKq")
    assert reply_address(invite, ("10.0.0.9", 6000)) == ("10.0.0.9", 5080)


def test_non2xx_ack_is_in_the_invite_transaction() -> None:
    invite = parse_message(asterisk_invite())
    busy = make_response(invite, 486, to_tag="tt")
    ack = build_non2xx_ack(invite, busy)
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.top_via.branch == invite.top_via.branch
    assert ack.cseq == (29181, "ACK") and ack.to_addr.tag == "tt"


def test_uac_dialog_route_set_and_targets() -> None:
    invite = SipMessage(
        method="INVITE",
        uri="sip:1002@pbx",
        headers=[
            ("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKa"),
            ("From", "<sip:1001@pbx>;tag=me"),
            ("To", "<sip:1002@pbx>"),
            ("Call-ID", "c1"),
            ("CSeq", "2 INVITE"),
        ],
    )
    ok = make_response(invite, 200, to_tag="them")
    ok.add("Contact", "<sip:1002@10.0.0.5:5062>")
    ok.add("Record-Route", "<sip:p2.example:5070;lr>, <sip:p1.example;lr>")
    dialog = Dialog.from_uac(invite, ok)
    assert dialog.route_set == ["<sip:p1.example;lr>", "<sip:p2.example:5070;lr>"]
    ack, dest = dialog.create_request("ACK", "SIP/2.0/UDP h;branch=z9hG4bKn", "<sip:me@h>", cseq=2)
    assert ack.uri == "sip:1002@10.0.0.5:5062" and dest == ("p1.example", 5060)
    assert ack.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example:5070;lr>"]
    assert ack.cseq == (2, "ACK") and ack.to_addr.tag == "them" and ack.from_addr.tag == "me"
    bye, _ = dialog.create_request("BYE", "SIP/2.0/UDP h;branch=z9hG4bKm", "<sip:me@h>")
    assert bye.cseq == (3, "BYE")
    dialog.route_set = []
    assert dialog.next_hop()[2] == ("10.0.0.5", 5062)


# --- digest ---------------------------------------------------------------------------------
def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_rfc2617_example() -> None:
    # The worked example of RFC 2617 section 3.5.
    ch = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization_value(ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", nc=1, cnonce="0a4f113b")
    params = parse_auth_params(value.removeprefix("Digest "))
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["qop"] == "auth" and params["nc"] == "00000001"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


def test_digest_without_qop() -> None:
    ch = parse_challenge('Digest realm="asterisk", nonce="n1"')
    params = parse_auth_params(authorization_value(ch, "1001", "pw", "REGISTER", "sip:pbx")[7:])
    assert params["response"] == md5(f"{md5('1001:asterisk:pw')}:n1:{md5('REGISTER:sip:pbx')}")
    assert "qop" not in params and "cnonce" not in params


def test_pick_challenge_prefers_md5_and_knows_proxy() -> None:
    resp = SipMessage(
        status=407,
        headers=[
            ("Proxy-Authenticate", 'Digest realm="r", nonce="a", algorithm=SHA-256, qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="r", nonce="b", algorithm=MD5, qop="auth"'),
        ],
    )
    ch = pick_challenge(resp)
    assert ch is not None and ch.nonce == "b" and ch.response_header == "Proxy-Authorization"


# --- SDP ------------------------------------------------------------------------------------
def test_parse_and_answer_asterisk_sdp() -> None:
    remote = parse_sdp(ASTERISK_SDP.encode())
    assert (remote.address, remote.port, remote.payload_types) == ("127.0.0.1", 10022, [8, 0, 101])
    assert remote.telephone_event_pt == 101 and remote.ptime == 20 and not remote.on_hold
    assert negotiate(remote, ["PCMU", "PCMA"]).codec == "PCMA"  # the offerer's preference
    local, neg = answer_for(remote, "127.0.0.1", 40000, ["PCMU"])
    assert neg.codec == "PCMU" and neg.payload_type == 0
    text = local.to_bytes().decode()
    assert "m=audio 40000 RTP/AVP 0 101\r\n" in text and "a=ptime:20" in text and "a=sendrecv" in text
    with pytest.raises(SipParseError):
        negotiate(parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n"), ["PCMU"])


def test_media_level_connection_and_hold() -> None:
    sdp = b"v=0\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\na=sendonly\r\n"
    remote = parse_sdp(sdp)
    assert remote.address == "2.2.2.2" and remote.direction == "sendonly" and not remote.on_hold
    assert parse_sdp(sdp.replace(b"2.2.2.2", b"0.0.0.0")).on_hold


def test_local_offer() -> None:
    text = LocalSdp("127.0.0.1", 40002, ["PCMU", "PCMA"], session_id=5).to_bytes().decode()
    assert "m=audio 40002 RTP/AVP 0 8 101" in text and "a=rtpmap:101 telephone-event/8000" in text
    assert text.startswith("v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\n")


# --- audio helpers --------------------------------------------------------------------------
def test_timeline_keeps_gaps_and_ignores_jitter() -> None:
    frames = []
    t0 = 100.0
    for k in range(10):  # first talkspurt, arrivals jittered by up to 3 ms
        frames.append(
            TimedFrame(t0 + 0.02 * k + 0.003 * (k % 2), 1000 + 160 * k, 7, np.full(160, k + 1, dtype=np.int16))
        )
    for k in range(5):  # second talkspurt 1 s later, timestamps continue without a jump
        frames.append(TimedFrame(t0 + 1.0 + 0.02 * k, 1000 + 160 * (10 + k), 7, np.full(160, 50, dtype=np.int16)))
    out = place_on_timeline(frames, origin=t0 - 0.5)
    assert out[4000:4160].tolist() == [1] * 160 and out[4160:4320].tolist() == [2] * 160
    assert not out[4000 + 1600 : 12000].any()
    assert out[12000:12800].tolist() == [50] * 800


def test_playout_queue_and_echo_line() -> None:
    q = PlayoutQueue()
    target = q.push(np.arange(200, dtype=np.int16))
    first = q.take()
    assert first is not None and first[0] == 0 and q.played_total == 160
    second = q.take()
    assert second is not None and second[:40].tolist() == list(range(160, 200)) and not second[40:].any()
    assert q.played_total == target and q.take() is None
    echo = EchoLine(delay=320, gain=0.5)
    echo.push(np.ones(160, dtype=np.int16))
    assert not echo.pull().any() and not echo.pull().any() and echo.pull().all()


def test_dtmf_payload_roundtrip_and_tone_level() -> None:
    assert parse_dtmf_payload(dtmf_payload("#", True, 800)) == ("#", True, 800)
    t = tone(1000, 0.5, -6)
    assert abs(20 * np.log10(np.abs(t).max() / 32767) + 6) < 0.1


def test_wav_roundtrip(tmp_path) -> None:
    pcm = tone(440, 0.1)
    save_wav(tmp_path / "a.wav", pcm, 8000)
    back, rate = load_wav(tmp_path / "a.wav")
    assert rate == 8000 and np.array_equal(back, pcm)
