"""SIP transactions over UDP (RFC 3261 section 17), as used by a user agent.

Theory of operation:

* A **client transaction** sends a request and retransmits it on Timer A/E: T1, 2*T1, 4*T1...
  An INVITE stops retransmitting at the first provisional response; a non-INVITE keeps
  retransmitting (capped at T2) until a final response. No response at all within 64*T1 raises
  :class:`TransactionTimeout` (Timers B and F). A non-2xx final response to an INVITE is ACKed
  *by the transaction* (same branch, To tag from the response); a 2xx ends the transaction and
  the call acknowledges it in a new transaction (RFC 3261 13.2.2.4).
* A **server transaction** remembers the last response it sent so that a retransmitted
  request gets that response again. A final response to an INVITE is retransmitted
  (T1 doubling, capped at T2) until the ACK arrives or 64*T1 passes.
* Finished transactions linger (Timers D/K/I/J) in :class:`TransactionTable` to absorb
  retransmissions, and are purged lazily.

Over a reliable transport (TLS) nothing is retransmitted: the timers that bound the waits stay.

No task is created here without an owner: long-running retransmission loops are coroutines
that the caller runs inside its own task set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from softphone.errors import TransactionTimeout
from softphone.message import SipMessage, Via

T1 = 0.5
T2 = 4.0
T4 = 5.0

Address = tuple[str, int]
SendFn = Callable[[bytes, Address], None]


class ClientTransaction:
    """One outgoing request and its responses."""

    def __init__(
        self, request: SipMessage, dest: Address, send: SendFn, *, t1: float = T1, reliable: bool = False
    ) -> None:
        self.request = request
        self.dest = dest
        self.reliable = reliable
        self._send = send
        self._t1 = t1
        self.method = request.method or ""
        self.key = (request.top_via.branch or "", request.cseq[1])
        self.provisional: SipMessage | None = None
        self.final: SipMessage | None = None
        self.on_provisional: Callable[[SipMessage], None] | None = None
        self.give_up_at: float | None = None
        self.expires_at: float | None = None
        self._ack: bytes | None = None
        self._wake = asyncio.Event()
        self._data = request.to_bytes()

    def receive(self, response: SipMessage) -> None:
        """Feed a response whose branch and CSeq method match this transaction."""
        status = response.status or 0
        if self.final is not None:
            # retransmitted final response: re-ACK a non-2xx INVITE final
            if self._ack is not None and status >= 300:
                self._send(self._ack, self.dest)
            return
        if status < 200:
            self.provisional = response
            if self.on_provisional is not None:
                self.on_provisional(response)
        else:
            self.final = response
            if self.method == "INVITE" and status >= 300:
                self._ack = build_non2xx_ack(self.request, response).to_bytes()
                self._send(self._ack, self.dest)
        self._wake.set()

    def give_up_after(self, seconds: float) -> None:
        """Stop waiting for a final response ``seconds`` from now (used after CANCEL)."""
        self.give_up_at = time.monotonic() + seconds
        self._wake.set()

    async def run(self) -> SipMessage:
        """Send the request, retransmit as needed, and return the final response.

        Raises:
            TransactionTimeout: no final response in 64*T1 (or after :meth:`give_up_after`).
        """
        try:
            final = await self._run()
        except BaseException:
            self.expires_at = time.monotonic()
            raise
        status = final.status or 0
        linger = 64 * self._t1 if self.method == "INVITE" and status >= 300 else T4
        self.expires_at = time.monotonic() + linger
        return final

    async def _run(self) -> SipMessage:
        self._send(self._data, self.dest)
        interval = self._t1
        start = time.monotonic()
        deadline = start + 64 * self._t1
        next_send = start + interval
        while self.final is None:
            now = time.monotonic()
            # an INVITE that got a provisional response waits for the final one without limit
            # (the caller decides when to CANCEL); everything else is bounded by Timer B/F.
            waiting_forever = self.method == "INVITE" and self.provisional is not None
            limits = [] if waiting_forever else [deadline] if self.reliable else [deadline, next_send]
            if self.give_up_at is not None:
                limits.append(self.give_up_at)
            if (self.give_up_at is not None and now >= self.give_up_at) or (not waiting_forever and now >= deadline):
                raise TransactionTimeout(f"{self.method} to {self.dest}: no final response")
            if not self.reliable and not waiting_forever and now >= next_send:
                self._send(self._data, self.dest)
                if self.provisional is not None:
                    interval = T2  # non-INVITE in Proceeding: retransmit every T2
                elif self.method == "INVITE":
                    interval *= 2
                else:
                    interval = min(interval * 2, T2)
                next_send = now + interval
                continue
            self._wake.clear()
            timeout = max(0.0, min(limits) - now) if limits else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        return self.final


def build_non2xx_ack(invite: SipMessage, response: SipMessage) -> SipMessage:
    """ACK for a non-2xx final response: part of the INVITE transaction (RFC 3261 17.1.1.3)."""
    ack = SipMessage(method="ACK", uri=invite.uri)
    ack.add("Via", invite.get_all("Via")[0])
    for route in invite.get_all("Route"):
        ack.add("Route", route)
    ack.add("Max-Forwards", "70")
    ack.add("From", invite.get("From") or "")
    ack.add("To", response.get("To") or "")
    ack.add("Call-ID", invite.call_id)
    ack.add("CSeq", f"{invite.cseq[0]} ACK")
    return ack


def reply_address(request: SipMessage, source: Address) -> Address:
    """Where responses go (RFC 3261 18.2.2 with RFC 3581 rport): the source IP, and the source
    port if the top Via asked for rport, else the Via's sent-by port."""
    via: Via = request.top_via
    if "rport" in via.params:
        return source
    return source[0], via.port or 5060


class ServerTransaction:
    """One incoming request and the responses we sent to it."""

    def __init__(
        self, request: SipMessage, source: Address, send: SendFn, *, t1: float = T1, reliable: bool = False
    ) -> None:
        self.request = request
        self.reliable = reliable
        self.method = request.method or ""
        self.key = (request.top_via.branch or "", self.method)
        self.reply_to = reply_address(request, source)
        self._send = send
        self._t1 = t1
        self.last_response: SipMessage | None = None
        self._last_bytes: bytes | None = None
        self.acked = asyncio.Event()
        self._settled = asyncio.Event()  # ACK arrived or nobody needs retransmissions any more
        self.expires_at: float | None = None

    def ack(self) -> None:
        """The ACK for our final response arrived."""
        self.acked.set()
        self._settled.set()

    def stop_retransmitting(self) -> None:
        """Give up waiting for the ACK (the call ended another way)."""
        self._settled.set()

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and (self.last_response.status or 0) >= 200

    def respond(self, response: SipMessage) -> None:
        self.last_response = response
        self._last_bytes = response.to_bytes()
        self._send(self._last_bytes, self.reply_to)
        if (response.status or 0) >= 200:
            self.expires_at = time.monotonic() + 64 * self._t1

    def retransmission(self) -> None:
        """The same request arrived again: repeat our last response, if any."""
        if self._last_bytes is not None:
            self._send(self._last_bytes, self.reply_to)

    async def retransmit_until_ack(self) -> bool:
        """Retransmit the final INVITE response until :attr:`acked` is set (Timers G/H).

        Returns:
            True if the ACK arrived, False after 64*T1 without it or after
            :meth:`stop_retransmitting`.
        """
        interval = self._t1
        deadline = time.monotonic() + 64 * self._t1
        while not self._settled.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._settled.wait(), min(interval, remaining))
            except TimeoutError:
                if not self.reliable:
                    self.retransmission()
                interval = min(interval * 2, T2)
        return self.acked.is_set()


class TransactionTable:
    """Client and server transactions of one SIP socket, matched per RFC 3261 17.1.3/17.2.3."""

    def __init__(self) -> None:
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        self.server: dict[tuple[str, str], ServerTransaction] = {}

    def add_client(self, txn: ClientTransaction) -> None:
        self.purge()
        self.client[txn.key] = txn

    def add_server(self, txn: ServerTransaction) -> None:
        self.purge()
        self.server[txn.key] = txn

    def match_response(self, response: SipMessage) -> ClientTransaction | None:
        return self.client.get((response.top_via.branch or "", response.cseq[1]))

    def match_request(self, request: SipMessage) -> ServerTransaction | None:
        """The server transaction a request belongs to (an ACK maps to its INVITE)."""
        method = "INVITE" if request.method == "ACK" else request.method or ""
        return self.server.get((request.top_via.branch or "", method))

    def purge(self) -> None:
        now = time.monotonic()
        for table in (self.client, self.server):
            for key in [k for k, t in table.items() if t.expires_at is not None and t.expires_at < now]:
                del table[key]

    def clear(self) -> None:
        self.client.clear()
        self.server.clear()
