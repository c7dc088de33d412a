"""Outgoing calls: the INVITE client side (RFC 3261 13.2), digest retries and CANCEL (9.1).

The INVITE runs in a task owned by the call. A 401/407 is ACKed by the transaction and the
INVITE is re-sent with the next CSeq, the same Call-ID and From tag, and credentials. A 2xx
is acknowledged in a new transaction sent to the dialog's remote target (or first Route);
that ACK is kept so a retransmitted 2xx (our ACK was lost) gets it again.

The call is reachable under its dialog key (Call-ID, our From tag) from the first INVITE on, not only
once the 2xx is processed: a 1xx with a To tag opens an early dialog, and the far end may send
requests in it (RFC 3311). Asterisk does: when the AI answers a call that rang unanswered, the
connected-line UPDATE can leave just before the 200 OK (or reach us before the task that handles the
200 has run). A 481 to it made Asterisk end the call at the answer (BYE, cause 127, interworking).
In the early dialog UPDATE and OPTIONS / INFO / NOTIFY / MESSAGE are answered as in the confirmed
one; anything else gets 481.
"""

from __future__ import annotations

import asyncio
import logging

from softphone.auth import pick_challenge
from softphone.call import Call
from softphone.dialog import Dialog
from softphone.endpoint import ALLOW, SipEndpoint
from softphone.errors import CallFailed, SipParseError, TransactionTimeout
from softphone.media import RtpStream
from softphone.message import NameAddr, SipMessage, new_tag
from softphone.sdp import LocalSdp
from softphone.transaction import T1, ClientTransaction, ServerTransaction

log = logging.getLogger("softphone")
Address = tuple[str, int]


class OutgoingCall(Call):
    """A call we place. ``await call.answered()`` waits for the answer or raises CallFailed.

    Attributes:
        request_uri: the INVITE's Request-URI.
        ringing: set on 180/183.
        last_provisional: the latest 1xx response.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        media: RtpStream,
        local_sdp: LocalSdp,
        *,
        call_id: str,
        request_uri: str,
        dest: Address,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(endpoint, media, local_sdp, call_id=call_id, direction="outgoing", state="calling")
        self.request_uri = request_uri
        self.dest = dest
        self.ringing = asyncio.Event()
        self.last_provisional: SipMessage | None = None
        self._from = NameAddr(endpoint.aor, endpoint.display_name, {"tag": new_tag()})
        self._headers = headers or []
        self._cseq = 0
        self._invite: SipMessage | None = None
        self._invite_txn: ClientTransaction | None = None
        self._provisional = asyncio.Event()
        self._cancel_requested = False
        self._ack: tuple[bytes, Address] | None = None
        self._result: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._invite_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ep.dialogs[self._dialog_key] = self  # early dialogs too (see the module docstring)
        self._invite_task = self._tasks.spawn(self._run(), "invite")

    @property
    def _dialog_key(self) -> tuple[str, str]:
        """The key of every dialog this INVITE creates, early or confirmed (Call-ID, our From tag)."""
        return self.call_id, self._from.tag or ""

    # --- public API --------------------------------------------------------------------
    async def answered(self) -> None:
        """Wait for the answer.

        Raises:
            CallFailed: final non-2xx response (487 when cancelled), or 408 on timeout.
        """
        await asyncio.shield(self._result)

    async def cancel(self) -> None:
        """CANCEL the pending INVITE and wait for it to finish (hang up if already answered)."""
        if self.state not in ("calling", "ringing"):
            if self.state == "confirmed":
                await self.hangup()
            return
        self._cancel_requested = True
        # RFC 3261 9.1: no CANCEL before a provisional response has arrived.
        waiter = asyncio.ensure_future(self._provisional.wait())
        try:
            await asyncio.wait([waiter, self._result], timeout=64 * T1, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        txn, invite = self._invite_txn, self._invite
        if not self._result.done() and txn is not None and invite is not None and txn.final is None:
            cancel_txn = self._ep.start_transaction(build_cancel(invite), txn.dest)
            try:
                await cancel_txn.run()
            except TransactionTimeout:
                log.info("%r: CANCEL got no response", self)
            txn.give_up_after(64 * T1)
        if self._invite_task is not None:
            await asyncio.wait([self._invite_task], timeout=70 * T1)

    async def aclose(self, bye_wait: float = 2.0) -> None:
        """CANCEL a pending INVITE (bounded), hang up an answered call, release everything."""
        if self.state in ("calling", "ringing"):
            try:
                await asyncio.wait_for(self.cancel(), bye_wait)
            except TimeoutError:
                log.info("%r: CANCEL did not complete before close", self)
        await super().aclose(bye_wait)
        if not self._result.done():
            self._result.set_exception(CallFailed(0, "phone closed"))

    # --- INVITE flow -------------------------------------------------------------------
    def _build_invite(self, extra: list[tuple[str, str]]) -> SipMessage:
        self._cseq += 1
        msg = SipMessage(method="INVITE", uri=self.request_uri)
        msg.add("Via", self._ep.via())
        msg.add("Max-Forwards", "70")
        msg.add("From", str(self._from))
        msg.add("To", f"<{self.request_uri}>")
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{self._cseq} INVITE")
        msg.add("Contact", self._ep.contact)
        msg.add("Allow", ALLOW)
        for name, value in extra + self._headers:
            msg.add(name, value)
        msg.add("Content-Type", "application/sdp")
        msg.body = self.local_sdp.to_bytes()
        return msg

    async def _run(self) -> None:
        try:
            await self._invite_loop()
        except Exception as exc:  # a bug or an unusable response: fail the call, not the phone
            log.exception("%r: INVITE failed", self)
            self._fail(500, f"local error: {exc}")

    async def _invite_loop(self) -> None:
        extra: list[tuple[str, str]] = []
        for attempt in range(3):
            invite = self._build_invite(extra)
            txn = self._ep.start_transaction(invite, self.dest)
            txn.on_provisional = self._on_provisional
            self._invite, self._invite_txn = invite, txn
            try:
                final = await txn.run()
            except TransactionTimeout:
                self._fail(408, "Request Timeout")
                return
            status = final.status or 0
            if status in (401, 407) and self._ep.has_password and not self._cancel_requested:
                ch = pick_challenge(final)
                if ch is not None and attempt < 2 and (attempt == 0 or ch.stale):
                    extra = [self._ep.digest.authorize(ch, "INVITE", self.request_uri)]
                    continue
            if 200 <= status < 300:
                await self._on_2xx(invite, final)
            else:
                self._fail(status, final.reason)
            return

    def _on_provisional(self, response: SipMessage) -> None:
        self.last_provisional = response
        self._event("provisional")
        self._provisional.set()
        if response.status in (180, 183):
            self.ringing.set()

    async def _on_2xx(self, invite: SipMessage, response: SipMessage) -> None:
        try:
            dialog = Dialog.from_uac(invite, response)
        except SipParseError as exc:
            self._fail(502, f"bad 2xx: {exc}")
            return
        self.dialog = dialog  # reachable under dialog.key since start() (the same key)
        ack, dest = dialog.create_request("ACK", self._ep.via(), self._ep.contact, cseq=invite.cseq[0])
        self._ack = (ack.to_bytes(), dest)
        self._ep.send(*self._ack)
        self._event("answered")
        failure: CallFailed | None = None
        if self._cancel_requested:
            failure = CallFailed(487, "Request Terminated (answered while cancelling)")
        else:
            try:
                self._apply_remote_sdp(response.body)
            except SipParseError as exc:
                failure = CallFailed(488, f"Not Acceptable Here ({exc})")
        if failure is not None:
            await self.hangup()
            self.end_reason, self.end_status = ("cancelled" if self._cancel_requested else "failed", failure.status)
            self._result.set_exception(failure)
            return
        self._start_media()
        self._result.set_result(None)

    def _fail(self, status: int, reason: str) -> None:
        if self._cancel_requested and status in (401, 407, 408):
            status, reason = 487, "Request Terminated"
        self._end("failed", "cancelled" if self._cancel_requested else "failed", status)
        if not self._result.done():
            self._result.set_exception(CallFailed(status, reason))

    def on_2xx_retransmission(self, response: SipMessage) -> None:
        if self._ack is not None:
            self._ep.send(*self._ack)

    def on_request(self, request: SipMessage, txn: ServerTransaction) -> None:
        if self.dialog is not None:
            super().on_request(request, txn)
        elif self.state in ("calling", "ringing") and request.method == "UPDATE":
            self._answer_offer(request, txn)
        elif self.state in ("calling", "ringing") and request.method in ("OPTIONS", "INFO", "NOTIFY", "MESSAGE"):
            self._ep.respond(txn, 200, headers=[("Allow", ALLOW)])
        else:
            self._ep.respond(txn, 481)

    def _end(self, event: str, reason: str, status: int | None = None) -> None:
        super()._end(event, reason, status)
        if self.ended.is_set():
            self._ep.dialogs.pop(self._dialog_key, None)


def build_cancel(invite: SipMessage) -> SipMessage:
    """CANCEL for a pending INVITE: same Request-URI, top Via (branch), From, To, Call-ID and
    CSeq number, and the same Route set (RFC 3261 9.1)."""
    cancel = SipMessage(method="CANCEL", uri=invite.uri)
    cancel.add("Via", invite.get_all("Via")[0])
    for route in invite.get_all("Route"):
        cancel.add("Route", route)
    cancel.add("Max-Forwards", "70")
    cancel.add("From", invite.get("From") or "")
    cancel.add("To", invite.get("To") or "")
    cancel.add("Call-ID", invite.call_id)
    cancel.add("CSeq", f"{invite.cseq[0]} CANCEL")
    return cancel
