"""SDP offer/answer for one audio stream (RFC 4566, RFC 3264), G.711 + RFC 4733 events.

Pure code. We offer PCMU (0), PCMA (8) and telephone-event/8000 (101) with ``a=ptime:20`` and
``a=sendrecv``; the answerer picks the first of the offerer's codecs that we support and
echoes the offerer's telephone-event payload type.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from softphone.errors import SipParseError

STATIC_PT = {0: "PCMU", 8: "PCMA"}
PT_FOR = {"PCMU": 0, "PCMA": 8}
TELEPHONE_EVENT_PT = 101


@dataclass
class MediaDescription:
    """What a remote SDP says about its audio stream.

    Attributes:
        address: connection address (media-level ``c=`` wins over session-level).
        port: RTP port; 0 means the stream was rejected.
        payload_types: ``m=`` formats in preference order.
        rtpmap: payload type -> (encoding name upper-case, clock rate).
        direction: sendrecv / sendonly / recvonly / inactive.
        ptime: packetisation time in ms if given.
    """

    address: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int | None = None

    def codec_name(self, pt: int) -> str | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt][0]
        return STATIC_PT.get(pt)

    @property
    def telephone_event_pt(self) -> int | None:
        for pt in self.payload_types:
            name, rate = self.rtpmap.get(pt, ("", 0))
            if name == "TELEPHONE-EVENT" and rate == 8000:
                return pt
        return None

    @property
    def on_hold(self) -> bool:
        return self.address in ("0.0.0.0", "::") or self.direction in ("recvonly", "inactive")


@dataclass(frozen=True)
class Negotiated:
    """Result of offer/answer: the audio codec both sides use and the DTMF payload type."""

    codec: str
    payload_type: int
    telephone_event_pt: int | None


def parse_sdp(body: bytes) -> MediaDescription:
    """Parse the first ``m=audio`` stream of an SDP body.

    Raises:
        SipParseError: no audio stream or no connection address.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("SDP is not UTF-8") from exc
    session_addr: str | None = None
    media: MediaDescription | None = None
    media_addr: str | None = None
    session_dir = "sendrecv"
    in_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            if media is not None:  # only the first audio stream matters
                break
            parts = value.split()
            in_audio = len(parts) >= 3 and parts[0] == "audio"
            if in_audio:
                try:
                    pts = [int(p) for p in parts[3:]]
                    media = MediaDescription("", int(parts[1]), pts, direction=session_dir)
                except ValueError as exc:
                    raise SipParseError(f"bad m= line: {line!r}") from exc
        elif kind == "c":
            parts = value.split()
            if len(parts) >= 3:
                addr = parts[2].split("/")[0]
                if media is None and not in_audio:
                    session_addr = addr
                elif in_audio:
                    media_addr = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if media is None:
                    session_dir = name
                elif in_audio:
                    media.direction = name
            elif in_audio and media is not None and name == "rtpmap":
                pt, _, enc = arg.partition(" ")
                enc_name, _, rate = enc.partition("/")
                try:
                    media.rtpmap[int(pt)] = (enc_name.upper(), int(rate.split("/")[0] or 8000))
                except ValueError:
                    continue
            elif in_audio and media is not None and name == "ptime" and arg.strip().isdigit():
                media.ptime = int(arg)
    if media is None:
        raise SipParseError("SDP has no audio stream")
    address = media_addr or session_addr
    if not address:
        raise SipParseError("SDP has no connection address")
    media.address = address
    return media


def negotiate(remote: MediaDescription, supported: list[str]) -> Negotiated:
    """Pick the first of the remote's codecs that we support.

    Raises:
        SipParseError: no common codec (answer the INVITE with 488).
    """
    for pt in remote.payload_types:
        name = remote.codec_name(pt)
        if name in supported:
            return Negotiated(name, pt, remote.telephone_event_pt)
    raise SipParseError("no common audio codec")


@dataclass
class LocalSdp:
    """Our side of the session; kept per call so a re-INVITE gets the very same SDP."""

    address: str
    port: int
    codecs: list[str]
    telephone_event_pt: int | None = TELEPHONE_EVENT_PT
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    version: int = 1

    def to_bytes(self) -> bytes:
        pts = [PT_FOR[c] for c in self.codecs]
        fmts = [str(p) for p in pts]
        lines = [
            "v=0",
            f"o=- {self.session_id} {self.version} IN IP4 {self.address}",
            "s=softphone",
            f"c=IN IP4 {self.address}",
            "t=0 0",
        ]
        te = self.telephone_event_pt
        if te is not None:
            fmts.append(str(te))
        lines.append(f"m=audio {self.port} RTP/AVP {' '.join(fmts)}")
        lines += [f"a=rtpmap:{p} {c}/8000" for p, c in zip(pts, self.codecs, strict=True)]
        if te is not None:
            lines += [f"a=rtpmap:{te} telephone-event/8000", f"a=fmtp:{te} 0-16"]
        lines += ["a=ptime:20", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode()


def answer_for(offer: MediaDescription, address: str, port: int, supported: list[str]) -> tuple[LocalSdp, Negotiated]:
    """Our SDP answer to ``offer`` and the negotiated result.

    Raises:
        SipParseError: no common codec.
    """
    neg = negotiate(offer, supported)
    return LocalSdp(address, port, [neg.codec], neg.telephone_event_pt), neg
