"""SIP message model, parser and builder (RFC 3261 sections 7, 19, 20, 25).

Pure code, no sockets. The parser accepts what real stacks send: folded (multi-line)
headers, compact header names (``v:``, ``f:``, ``t:``, ``i:``, ``m:``, ``l:`` ...), any case
in header names, comma-joined list headers (``Via: a, b``), LF-only line ends, and a body
cut to ``Content-Length`` (UDP datagrams may carry trailing garbage).

Header names are kept in one canonical spelling so messages we build look like the ones
in the RFC examples.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from softphone.errors import SipParseError

COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
}
_SPECIAL_CASE = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity",
}
# Headers whose value is a comma-separated list of independent elements (RFC 3261 7.3.1).
# WWW-Authenticate & co. are deliberately absent: their single value contains commas.
LIST_HEADERS = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "allow-events",
    }
)
REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}
_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})\s*(.*)$", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^([A-Za-z]+)\s+(\S+)\s+SIP/2\.0$", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """Return the canonical spelling of a header name (expanding compact forms)."""
    low = name.strip().lower()
    low = COMPACT_FORMS.get(low, low)
    return _SPECIAL_CASE.get(low) or "-".join(p.capitalize() for p in low.split("-"))


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie ``z9hG4bK`` + random)."""
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


def split_quoted(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes and angle brackets; strip the pieces."""
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    depth = 0
    escape = False
    for ch in value:
        if escape:
            escape = False
        elif ch == "\\" and quoted:
            escape = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == sep and not quoted and depth == 0:
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    last = "".join(buf).strip()
    if last or out:
        out.append(last)
    return [p for p in out if p]


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;a=b;c`` (leading ``;`` optional) into an ordered dict; names lower-cased."""
    params: dict[str, str | None] = {}
    for part in split_quoted(text, ";"):
        name, eq, val = part.partition("=")
        params[name.strip().lower()] = val.strip() if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass
class SipUri:
    """A ``sip:`` URI: ``sip:user@host:port;params``."""

    host: str
    user: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text!r}")
        rest = rest.split("?", 1)[0]
        hostport, _, ptext = rest.partition(";")
        user = None
        if "@" in hostport:
            user, hostport = hostport.rsplit("@", 1)
            user = user.split(":", 1)[0]
        m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(\d+))?", hostport)
        if not m:
            raise SipParseError(f"bad host in URI: {text!r}")
        port = int(m.group(2)) if m.group(2) else None
        return cls(m.group(1), user, port, parse_params(ptext), scheme.lower())

    def address(self, default_port: int = 5060) -> tuple[str, int]:
        """The (host, port) to send to when this URI is the next hop."""
        host = self.params.get("maddr") or self.host
        return host.strip("[]"), self.port or default_port

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}"


@dataclass
class NameAddr:
    """``"Display" <uri>;params`` as used by From, To, Contact, Route, Record-Route."""

    uri: str
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            lt = text.index("<")
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"unterminated <uri> in {text!r}")
            display = text[:lt].strip().strip('"')
            return cls(text[lt + 1 : gt].strip(), display, parse_params(text[gt + 1 :]))
        # addr-spec without brackets: everything after the first ';' is a header parameter
        uri, _, ptext = text.partition(";")
        return cls(uri.strip(), "", parse_params(ptext))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display, {**self.params, "tag": tag})

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


@dataclass
class Via:
    """One Via element: ``SIP/2.0/UDP host:port;branch=...;rport``."""

    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    transport: str = "UDP"

    @classmethod
    def parse(cls, text: str) -> Via:
        m = re.fullmatch(r"\s*SIP\s*/\s*2\.0\s*/\s*(\w+)\s+([^;]+?)\s*(;.*)?", text, re.IGNORECASE)
        if not m:
            raise SipParseError(f"bad Via: {text!r}")
        sent_by = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(?:\s*:\s*(\d+))?", m.group(2))
        if not sent_by:
            raise SipParseError(f"bad Via sent-by: {text!r}")
        port = int(sent_by.group(2)) if sent_by.group(2) else None
        return cls(sent_by.group(1), port, parse_params(m.group(3) or ""), m.group(1).upper())

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


class SipMessage:
    """A SIP request (``method`` set) or response (``status`` set)."""

    def __init__(
        self,
        *,
        method: str | None = None,
        uri: str | None = None,
        status: int | None = None,
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if (method is None) == (status is None):
            raise ValueError("a SIP message is either a request (method) or a response (status)")
        self.method = method.upper() if method else None
        self.uri = uri
        self.status = status
        self.reason = reason or (REASONS.get(status, "") if status else "")
        self.headers: list[tuple[str, str]] = []
        for name, value in headers or []:
            self.add(name, value)
        self.body = body

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # --- headers ---------------------------------------------------------------------
    def get_all(self, name: str) -> list[str]:
        """All values of a header, list headers split into their elements."""
        cname = canonical_name(name)
        values = [v for n, v in self.headers if n == cname]
        if cname.lower() in LIST_HEADERS:
            return [part for v in values for part in split_quoted(v, ",")]
        return values

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return values[0] if values else default

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical_name(name), str(value)))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        cname = canonical_name(name)
        self.headers = [(n, v) for n, v in self.headers if n != cname]

    # --- common fields ---------------------------------------------------------------
    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        num, _, method = self._required("CSeq").partition(" ")
        try:
            return int(num), method.strip().upper()
        except ValueError as exc:
            raise SipParseError("bad CSeq") from exc

    @property
    def from_addr(self) -> NameAddr:
        return NameAddr.parse(self._required("From"))

    @property
    def to_addr(self) -> NameAddr:
        return NameAddr.parse(self._required("To"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.get_all("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("missing Via header")
        return vias[0]

    # --- wire format -----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        if self.is_request:
            first = f"{self.method} {self.uri} SIP/2.0"
        else:
            first = f"SIP/2.0 {self.status} {self.reason}"
        lines = [first] + [f"{n}: {v}" for n, v in self.headers if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __repr__(self) -> str:
        first = f"{self.method} {self.uri}" if self.is_request else f"{self.status} {self.reason}"
        return f"<SipMessage {first}>"


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from a UDP datagram.

    Raises:
        SipParseError: the datagram is not a well-formed SIP message.
    """
    sep, sep_len = data.find(b"\r\n\r\n"), 4
    if sep < 0:
        sep, sep_len = data.find(b"\n\n"), 2
    head_bytes, body = (data, b"") if sep < 0 else (data[:sep], data[sep + sep_len :])
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("SIP header is not UTF-8") from exc
    lines = [ln for ln in re.split(r"\r?\n", head.lstrip("\r\n"))]
    if not lines or not lines[0].strip():
        raise SipParseError("empty message")
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    headers: list[tuple[str, str]] = []
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise SipParseError(f"bad header line: {line!r}")
        headers.append((name, value.strip()))
    first = lines[0].strip()
    if m := _STATUS_LINE.match(first):
        msg = SipMessage(status=int(m.group(1)), reason=m.group(2).strip() or " ", headers=headers)
    elif m := _REQUEST_LINE.match(first):
        msg = SipMessage(method=m.group(1), uri=m.group(2), headers=headers)
    else:
        raise SipParseError(f"bad start line: {first!r}")
    length = msg.get("Content-Length")
    if length is not None:
        try:
            n = int(length)
        except ValueError as exc:
            raise SipParseError("bad Content-Length") from exc
        if n < 0 or n > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:n]
    msg.body = body
    return msg


def make_response(
    request: SipMessage,
    status: int,
    reason: str = "",
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipMessage:
    """Build a response to ``request`` (RFC 3261 8.2.6): copies Via, From, To, Call-ID, CSeq.

    ``to_tag`` is added to To unless the request already had one or the status is 100.
    Record-Route is copied into dialog-forming responses (RFC 3261 12.1.1).
    """
    resp = SipMessage(status=status, reason=reason)
    for via in request.get_all("Via"):
        resp.add("Via", via)
    resp.add("From", request._required("From"))
    to = request.to_addr
    if to_tag and to.tag is None and status > 100:
        to = to.with_tag(to_tag)
    resp.add("To", str(to))
    resp.add("Call-ID", request.call_id)
    resp.add("CSeq", request._required("CSeq"))
    if request.method == "INVITE" and 100 < status < 300:
        for rr in request.get_all("Record-Route"):
            resp.add("Record-Route", rr)
    for name, value in headers or []:
        resp.add(name, value)
    resp.body = body
    return resp
