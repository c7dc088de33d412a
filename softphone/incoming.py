"""Incoming calls: the INVITE server side (RFC 3261 13.3) until answer, reject or CANCEL.

The phone has already sent 100 Trying (and 180 Ringing with our To tag when ``auto_ring``)
when an :class:`IncomingCall` is handed out. ``answer()`` binds an RTP socket, sends 200 OK
with the SDP answer (or an offer, if the INVITE had no SDP), starts the media and waits for
the ACK while retransmitting the 200 (T1 doubling, capped at T2). ``reject()`` sends a final
error and keeps retransmitting it until the caller's ACK. A CANCEL before the answer gets
the INVITE a 487 and sets :attr:`IncomingCall.cancelled`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from softphone.call import Call
from softphone.dialog import Dialog
from softphone.endpoint import ALLOW, SipEndpoint
from softphone.errors import CallFailed, SipParseError
from softphone.media import RtpStream
from softphone.message import NameAddr, SipMessage, SipUri, new_tag
from softphone.sdp import LocalSdp, MediaDescription, answer_for
from softphone.transaction import ServerTransaction


class IncomingCall:
    """A ringing incoming call.

    Attributes:
        invite: the INVITE request.
        call_id: its Call-ID.
        from_addr / to_addr: parsed From and To.
        caller: user part of the From URI (e.g. ``"1001"``), or None.
        state: ``trying``, ``ringing``, ``answered``, ``rejected`` or ``cancelled``.
        cancelled: set when the caller cancels before we answer.
        call: the :class:`Call` once answered.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        invite: SipMessage,
        txn: ServerTransaction,
        *,
        remote_media: MediaDescription | None,
        codecs: list[str],
        rtp_ports: tuple[int, int],
        on_answer: Callable[[Call], None],
    ) -> None:
        self._ep = endpoint
        self._txn = txn
        self._codecs = codecs
        self._rtp_ports = rtp_ports
        self._on_answer = on_answer
        self.invite = invite
        self.call_id = invite.call_id
        self.from_addr = invite.from_addr
        self.to_addr = invite.to_addr
        self.request_uri = invite.uri
        self.remote_media = remote_media
        self.local_tag = new_tag()
        self.state = "trying"
        self.cancelled = asyncio.Event()
        self.received_at = time.monotonic()
        self.call: Call | None = None
        endpoint.cancel_handlers[txn.key] = self._on_cancel

    def __repr__(self) -> str:
        return f"<IncomingCall from {self.from_addr.uri} {self.state}>"

    @property
    def caller(self) -> str | None:
        return caller_of(self.from_addr)

    @property
    def display_name(self) -> str:
        return self.from_addr.display

    def ring(self, status: int = 180) -> None:
        """Send 180 Ringing (or 183) with our To tag and Contact."""
        if self.state in ("trying", "ringing"):
            self._ep.respond(
                self._txn, status, to_tag=self.local_tag, headers=[("Contact", self._ep.contact), ("Allow", ALLOW)]
            )
            self.state = "ringing"

    async def answer(self, *, wait_ack: bool = True) -> Call:
        """Answer with 200 OK and start media.

        Args:
            wait_ack: wait (up to 64*T1) for the caller's ACK before returning.

        Raises:
            CallFailed: the caller cancelled (487) or never sent the ACK (408).
        """
        self._check_pending()
        media = RtpStream(self._ep.local_ip, self._rtp_ports)
        await media.open()
        if self.state not in ("trying", "ringing"):  # cancelled while we were binding
            await media.close()
            self._check_pending()
        if self.remote_media is not None:
            local_sdp, _ = answer_for(self.remote_media, self._ep.advertised_ip, media.port, self._codecs)
        else:
            local_sdp = LocalSdp(self._ep.advertised_ip, media.port, list(self._codecs))
        call = Call(self._ep, media, local_sdp, call_id=self.call_id, direction="incoming", state="answering")
        call.dialog = Dialog.from_uas(self.invite, self.local_tag)
        if self.invite.body:
            call._apply_remote_sdp(self.invite.body)
        self._ep.dialogs[call.dialog.key] = call
        self._ep.cancel_handlers.pop(self._txn.key, None)
        self.state = "answered"
        self.call = call
        call._pending_ack = self._txn
        self._ep.respond(
            self._txn,
            200,
            to_tag=self.local_tag,
            body=local_sdp.to_bytes(),
            headers=[("Contact", self._ep.contact), ("Allow", ALLOW), ("Content-Type", "application/sdp")],
        )
        call._start_media()
        self._on_answer(call)
        if not wait_ack:
            call._tasks.spawn(self._txn.retransmit_until_ack(), "2xx-retransmit")
            return call
        if not await self._txn.retransmit_until_ack() and not call.ended.is_set():
            # RFC 3261 13.3.1.4: no ACK for our 2xx -> the dialog is confirmed, then BYE it.
            await call.hangup()
            call.end_reason = "no_ack"
            raise CallFailed(408, "no ACK for 200 OK")
        return call  # (already ended if the caller hung up or the phone closed meanwhile)

    async def reject(self, status: int = 486, reason: str = "") -> None:
        """Refuse the call with a final error response (486 Busy Here by default)."""
        if self.state not in ("trying", "ringing"):
            return
        self._final(status, reason, "rejected")

    def _on_cancel(self) -> None:
        if self.state in ("trying", "ringing"):
            self._final(487, "", "cancelled")
            self.cancelled.set()

    def _final(self, status: int, reason: str, state: str) -> None:
        self.state = state
        self._ep.cancel_handlers.pop(self._txn.key, None)
        self._ep.respond(self._txn, status, reason, to_tag=self.local_tag)
        if not self._ep.tasks.closed:
            self._ep.tasks.spawn(self._txn.retransmit_until_ack(), f"{status}-retransmit")

    def _check_pending(self) -> None:
        if self.state == "cancelled":
            raise CallFailed(487, "Request Terminated (caller cancelled)")
        if self.state not in ("trying", "ringing"):
            raise CallFailed(0, f"cannot answer a call that is {self.state}")


def caller_of(addr: NameAddr) -> str | None:
    """User part of a From/To address, if it is a SIP URI."""
    try:
        return SipUri.parse(addr.uri).user
    except SipParseError:
        return None
