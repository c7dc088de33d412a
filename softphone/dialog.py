"""SIP dialog state and in-dialog request construction (RFC 3261 section 12).

A dialog is identified by Call-ID, local tag and remote tag. It remembers the remote
target (the peer's Contact), the route set (from Record-Route: reversed for the UAC, as-is
for the UAS) and both CSeq counters. Requests inside the dialog go to the first Route if
there is a loose-routing route set (``;lr``), otherwise to the remote target; a strict
router (no ``;lr``) gets the RFC 3261 12.2.1.1 treatment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.errors import SipParseError
from softphone.message import NameAddr, SipMessage, SipUri

Address = tuple[str, int]


@dataclass
class Dialog:
    """One confirmed dialog."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_addr: NameAddr  # our From (UAC) / To (UAS), without tag
    remote_addr: NameAddr
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.local_tag

    @classmethod
    def from_uac(cls, invite: SipMessage, response: SipMessage) -> Dialog:
        """Dialog created by a 2xx to an INVITE we sent (RFC 3261 12.1.2)."""
        to = response.to_addr
        frm = invite.from_addr
        contact = response.get("Contact")
        if not contact or to.tag is None or frm.tag is None:
            raise SipParseError("2xx without Contact or To tag")
        return cls(
            call_id=invite.call_id,
            local_tag=frm.tag,
            remote_tag=to.tag,
            local_addr=NameAddr(frm.uri, frm.display),
            remote_addr=NameAddr(to.uri, to.display),
            remote_target=NameAddr.parse(contact).uri,
            route_set=list(reversed(response.get_all("Record-Route"))),
            local_cseq=invite.cseq[0],
        )

    @classmethod
    def from_uas(cls, invite: SipMessage, local_tag: str) -> Dialog:
        """Dialog created by our 2xx to an INVITE we received (RFC 3261 12.1.1)."""
        frm = invite.from_addr
        to = invite.to_addr
        contact = invite.get("Contact")
        if not contact or frm.tag is None:
            raise SipParseError("INVITE without Contact or From tag")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag,
            local_addr=NameAddr(to.uri, to.display),
            remote_addr=NameAddr(frm.uri, frm.display),
            remote_target=NameAddr.parse(contact).uri,
            route_set=list(invite.get_all("Record-Route")),
            local_cseq=0,
            remote_cseq=invite.cseq[0],
        )

    def next_hop(self) -> tuple[str, list[str], Address]:
        """Request-URI, Route headers and destination address for the next request."""
        if not self.route_set:
            return self.remote_target, [], SipUri.parse(self.remote_target).address()
        first = NameAddr.parse(self.route_set[0])
        first_uri = SipUri.parse(first.uri)
        if "lr" in first_uri.params:
            return self.remote_target, list(self.route_set), first_uri.address()
        # strict router: it becomes the Request-URI and the remote target the last Route
        routes = self.route_set[1:] + [f"<{self.remote_target}>"]
        return str(first.uri), routes, first_uri.address()

    def create_request(
        self,
        method: str,
        via: str,
        contact: str,
        *,
        cseq: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[SipMessage, Address]:
        """Build an in-dialog request and say where to send it.

        ``cseq`` defaults to the next local CSeq (ACK passes the INVITE's number).
        """
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, routes, dest = self.next_hop()
        req = SipMessage(method=method, uri=uri)
        req.add("Via", via)
        for route in routes:
            req.add("Route", route)
        req.add("Max-Forwards", "70")
        req.add("From", str(self.local_addr.with_tag(self.local_tag)))
        req.add("To", str(self.remote_addr.with_tag(self.remote_tag)))
        req.add("Call-ID", self.call_id)
        req.add("CSeq", f"{cseq} {method}")
        if method not in ("ACK", "CANCEL", "BYE"):
            req.add("Contact", contact)
        for name, value in headers or []:
            req.add(name, value)
        if body:
            req.add("Content-Type", content_type or "application/sdp")
        req.body = body
        return req, dest

    def accept_remote_cseq(self, request: SipMessage) -> bool:
        """Check and record the CSeq of an in-dialog request (RFC 3261 12.2.2)."""
        num = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and num < self.remote_cseq:
            return False
        self.remote_cseq = num
        return True
