"""HTTP digest authentication for SIP (RFC 2617 as profiled by RFC 3261 22.4, RFC 8760).

Pure functions: parse a ``WWW-Authenticate`` / ``Proxy-Authenticate`` challenge and build the
matching ``Authorization`` / ``Proxy-Authorization`` value. Supports ``qop=auth`` and the
legacy no-qop form, MD5 (the Asterisk default), MD5-sess and SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from softphone.errors import SipParseError
from softphone.message import SipMessage, split_quoted

_HASHES = {"MD5": hashlib.md5, "MD5-SESS": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-256-SESS": hashlib.sha256}
# Preference when a server offers several challenges (RFC 8760 lets it offer one per algorithm).
_PREFERENCE = ("MD5", "SHA-256", "MD5-SESS", "SHA-256-SESS")


@dataclass(frozen=True)
class Challenge:
    """One digest challenge.

    Attributes:
        realm, nonce, opaque: as sent by the server.
        algorithm: upper-cased algorithm name (``MD5`` when absent).
        qop: offered quality-of-protection values (empty for the RFC 2069 form).
        stale: the server says the nonce expired but the credentials were right.
        proxy: True for 407 / Proxy-Authenticate (answer with Proxy-Authorization).
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False

    @property
    def response_header(self) -> str:
        return "Proxy-Authorization" if self.proxy else "Authorization"


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_auth_params(text: str) -> dict[str, str]:
    """Parse ``a="x", b=y`` into a dict with lower-case names and unquoted values."""
    params: dict[str, str] = {}
    for part in split_quoted(text, ","):
        name, eq, value = part.partition("=")
        if eq:
            params[name.strip().lower()] = _unquote(value)
    return params


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    """Parse one ``Digest ...`` challenge value.

    Raises:
        SipParseError: not a digest challenge or realm/nonce missing.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"unsupported auth scheme {scheme!r}")
    p = parse_auth_params(rest)
    if "realm" not in p or "nonce" not in p:
        raise SipParseError("digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=p["realm"],
        nonce=p["nonce"],
        algorithm=p.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
        proxy=proxy,
    )


def pick_challenge(response: SipMessage) -> Challenge | None:
    """The best supported challenge in a 401/407 response, or None if there is none."""
    proxy = response.status == 407
    header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    candidates: list[Challenge] = []
    for value in response.get_all(header):
        try:
            ch = parse_challenge(value, proxy=proxy)
        except SipParseError:
            continue
        if ch.algorithm in _HASHES and (not ch.qop or "auth" in ch.qop):
            candidates.append(ch)
    candidates.sort(key=lambda c: _PREFERENCE.index(c.algorithm))
    return candidates[0] if candidates else None


def digest_response(ch: Challenge, username: str, password: str, method: str, uri: str, *, cnonce: str, nc: int) -> str:
    """The ``response=`` value (RFC 2617 3.2.2.1)."""
    h = _HASHES[ch.algorithm]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    ha1 = hx(f"{username}:{ch.realm}:{password}")
    if ch.algorithm.endswith("-SESS"):
        ha1 = hx(f"{ha1}:{ch.nonce}:{cnonce}")
    ha2 = hx(f"{method}:{uri}")
    if "auth" in ch.qop:
        return hx(f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return hx(f"{ha1}:{ch.nonce}:{ha2}")


def authorization_value(
    ch: Challenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """Build the Authorization / Proxy-Authorization header value for one request."""
    cnonce = cnonce or secrets.token_hex(8)
    resp = digest_response(ch, username, password, method, uri, cnonce=cnonce, nc=nc)
    parts = [
        f'username="{username}"',
        f'realm="{ch.realm}"',
        f'nonce="{ch.nonce}"',
        f'uri="{uri}"',
        f'response="{resp}"',
        f"algorithm={ch.algorithm}",
    ]
    if ch.opaque is not None:
        parts.append(f'opaque="{ch.opaque}"')
    if "auth" in ch.qop:
        parts += [f'cnonce="{cnonce}"', "qop=auth", f"nc={nc:08x}"]
    return "Digest " + ", ".join(parts)


class DigestSession:
    """Remembers nonce counts so repeated use of one nonce increments ``nc``."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._nc: dict[str, int] = {}

    def authorize(self, ch: Challenge, method: str, uri: str) -> tuple[str, str]:
        """Return ``(header_name, value)`` answering ``ch`` for ``method uri``."""
        nc = self._nc.get(ch.nonce, 0) + 1
        self._nc = {ch.nonce: nc}
        return ch.response_header, authorization_value(ch, self.username, self.password, method, uri, nc=nc)
