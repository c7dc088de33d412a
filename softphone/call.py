"""A call: one dialog plus one RTP stream.

Theory of operation: a call's life is a small state machine; the table below is the whole
of it. Methods perform the side effects (send BYE, stop media ...) and then feed the event.

=============  ==============  ==========  ==============================================
state          event           new state   when
=============  ==============  ==========  ==============================================
calling        provisional     ringing     1xx to our INVITE
calling/ring.  answered        confirmed   2xx to our INVITE, ACK sent
calling/ring.  failed          ended       non-2xx final, timeout, CANCEL done
answering      acked           confirmed   ACK for the 2xx we sent
answering      ack_timeout     ended       no ACK within 64*T1 (we send BYE)
answering/c.   bye_sent        ended       :meth:`Call.hangup`
answering/c.   bye_received    ended       peer sent BYE
any            closed          ended       the phone was closed
=============  ==============  ==========  ==============================================

In-dialog requests are answered like a desk phone: BYE 200 (and the call ends), OPTIONS /
INFO / NOTIFY / MESSAGE 200, re-INVITE / UPDATE 200 with our unchanged SDP.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from softphone._tasks import TaskSet
from softphone.audio import RATE, Pcm, tone
from softphone.dialog import Dialog
from softphone.endpoint import ALLOW, SipEndpoint
from softphone.errors import SipParseError, SoftphoneError
from softphone.media import RtpStream, RxPacket
from softphone.message import SipMessage
from softphone.sdp import LocalSdp, MediaDescription, Negotiated, negotiate, parse_sdp
from softphone.transaction import ServerTransaction

log = logging.getLogger("softphone")

TRANSITIONS: dict[tuple[str, str], str] = {
    ("calling", "provisional"): "ringing",
    ("ringing", "provisional"): "ringing",
    ("calling", "answered"): "confirmed",
    ("ringing", "answered"): "confirmed",
    ("calling", "failed"): "ended",
    ("ringing", "failed"): "ended",
    ("answering", "acked"): "confirmed",
    ("confirmed", "acked"): "confirmed",
    ("answering", "ack_timeout"): "ended",
    ("answering", "bye_sent"): "ended",
    ("confirmed", "bye_sent"): "ended",
    ("answering", "bye_received"): "ended",
    ("confirmed", "bye_received"): "ended",
}


class Call:
    """An established (or being established) call with media.

    Attributes:
        call_id: SIP Call-ID.
        direction: ``"outgoing"`` or ``"incoming"``.
        state: see the module table.
        answered_at: ``time.monotonic()`` when the call was answered (origin of recordings).
        ended: set when the call is over (at ``ended_at``); ``end_reason`` says why
            (``local_bye``, ``remote_bye``, ``cancelled``, ``failed``, ``no_ack``, ``phone_closed``).
        media: the :class:`~softphone.media.RtpStream`.
    """

    def __init__(
        self, endpoint: SipEndpoint, media: RtpStream, local_sdp: LocalSdp, *, call_id: str, direction: str, state: str
    ) -> None:
        self._ep = endpoint
        self.media = media
        self.local_sdp = local_sdp
        self.call_id = call_id
        self.direction = direction
        self.state = state
        self.dialog: Dialog | None = None
        self.remote_media: MediaDescription | None = None
        self.negotiated: Negotiated | None = None
        self.answered_at: float | None = None
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.end_status: int | None = None
        self.ended_at: float | None = None
        self._tasks = TaskSet(f"call-{call_id[:8]}")
        self._pending_ack: ServerTransaction | None = None

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.call_id[:12]} {self.state}>"

    # --- state machine -----------------------------------------------------------------
    def _event(self, event: str) -> bool:
        new = "ended" if event == "closed" else TRANSITIONS.get((self.state, event))
        if new is None:
            log.debug("%r: ignoring event %s", self, event)
            return False
        self.state = new
        return True

    def _end(self, event: str, reason: str, status: int | None = None) -> None:
        if self.ended.is_set() or not self._event(event):
            return
        self.end_reason = reason
        self.end_status = status
        self.ended_at = time.monotonic()
        if self._pending_ack is not None:
            self._pending_ack.stop_retransmitting()
        self.media.stop()
        if self.dialog is not None:
            self._ep.dialogs.pop(self.dialog.key, None)
        self.ended.set()

    # --- media setup -------------------------------------------------------------------
    def _apply_remote_sdp(self, body: bytes) -> None:
        """Parse a remote offer/answer and point the RTP stream at it.

        Raises:
            SipParseError: unusable SDP (answer 488 / hang up).
        """
        remote = parse_sdp(body)
        if self.negotiated is not None and self.negotiated.payload_type in remote.payload_types:
            neg = self.negotiated
        else:
            neg = negotiate(remote, self.local_sdp.codecs)
        self.remote_media, self.negotiated = remote, neg
        target = None if remote.on_hold or remote.port == 0 else (remote.address, remote.port)
        self.media.configure(target, neg.codec, neg.telephone_event_pt)

    def _start_media(self) -> None:
        self.answered_at = time.monotonic()
        self.media.start()

    # --- public API --------------------------------------------------------------------
    @property
    def remote_uri(self) -> str | None:
        return self.dialog.remote_addr.uri if self.dialog else None

    @property
    def codec(self) -> str | None:
        return self.negotiated.codec if self.negotiated else None

    @property
    def rx_packets(self) -> list[RxPacket]:
        """``(arrival_monotonic, sequence, timestamp, payload_type, payload)`` per audio packet."""
        return self.media.rx_packets

    @property
    def rx_other_count(self) -> int:
        """Received packets of other payload types (RTCP, CN ...) and malformed datagrams."""
        return self.media.rx_other + self.media.rx_malformed

    @property
    def received_dtmf(self) -> list[tuple[float, str]]:
        return self.media.received_dtmf

    async def answered(self) -> None:
        """Wait until the call is answered; an answered incoming call returns at once."""

    async def cancel(self) -> None:
        """Give up the call (for an established call this is :meth:`hangup`)."""
        await self.hangup()

    async def hangup(self, bye_wait: float = 5.0) -> None:
        """Send BYE (no-op if the call already ended) and wait up to ``bye_wait`` seconds for its 200."""
        if self.ended.is_set() or self.dialog is None:
            return
        dialog = self.dialog
        self._end("bye_sent", "local_bye")

        def build(extra: list[tuple[str, str]]) -> tuple[SipMessage, tuple[str, int]]:
            return dialog.create_request("BYE", self._ep.via(), self._ep.contact, headers=extra)

        try:
            await asyncio.wait_for(self._ep.request_with_auth(build), bye_wait)
        except (TimeoutError, SoftphoneError) as exc:
            log.info("%r: BYE not confirmed: %s", self, exc)
        await self.media.close()

    def play(self, pcm: np.ndarray, sample_rate: int = RATE) -> None:
        """Queue audio to send (resampled to 8 kHz if needed)."""
        self.media.play(pcm, sample_rate)

    async def play_done(self) -> None:
        """Wait until everything queued so far has been sent (or the call ended)."""
        await self.media.wait_played()

    async def play_and_wait(self, pcm: np.ndarray, sample_rate: int = RATE) -> None:
        self.play(pcm, sample_rate)
        await self.play_done()

    def play_tone(self, freq: float, seconds: float, amplitude_dbfs: float = -12.0) -> None:
        """Queue a sine tone; ``await call.play_done()`` to wait for it."""
        self.media.play(tone(freq, seconds, amplitude_dbfs), RATE)

    def stop_sending_media(self) -> None:
        """Send no more RTP, as a phone whose network died would (signalling and receiving go on)."""
        self.media.stop_sending()

    def stop_playback(self) -> None:
        """Drop queued audio (what is already sent is gone)."""
        self.media.stop_playback()

    @property
    def playing(self) -> bool:
        return self.media.playing

    def stop_sending(self) -> None:
        """Send no more RTP while the dialog stays up, as a phone that crashed or lost its network
        (:meth:`resume_sending` undoes it)."""
        self.media.sending = False

    def resume_sending(self) -> None:
        self.media.sending = True

    def set_echo(self, delay_ms: float | None = 100, gain_db: float = -12.0) -> None:
        """Mix a delayed, attenuated copy of received audio into what we send (None: off)."""
        self.media.set_echo(delay_ms, gain_db)

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send RFC 4733 telephone-events and wait until they are sent."""
        self.media.queue_dtmf(digits, duration_ms)
        await self.media.wait_dtmf_sent()

    def received_audio(self, sample_rate: int = RATE) -> Pcm:
        """Received audio placed by arrival time from :attr:`answered_at` (gaps are zeros).

        The track runs up to now (or to the end of the call), so silence after the last
        packet counts as silence; before the answer it is empty.
        """
        if self.answered_at is None:
            return self.media.received_audio(self._origin(), sample_rate)
        until = self.ended_at if self.ended_at is not None else time.monotonic()
        return self.media.received_audio(self.answered_at, sample_rate, until=until)

    def early_audio(self, sample_rate: int = RATE) -> Pcm:
        """What was heard before the answer (early media after a 183: a recording notice, in-band
        ringing), from its first packet; empty when nothing came before the answer."""
        first = self.media.rx_packets[0][0] if self.media.rx_packets else None
        if first is None or (self.answered_at is not None and first >= self.answered_at):
            return np.zeros(0, dtype=np.int16)
        return self.media.received_audio(first, sample_rate, before=self.answered_at)

    def sent_audio(self, sample_rate: int = RATE) -> Pcm:
        """What we sent, on the same timeline as :meth:`received_audio`."""
        return self.media.sent_audio(self._origin(), sample_rate)

    def _origin(self) -> float:
        if self.answered_at is not None:
            return self.answered_at
        return self.media.rx_packets[0][0] if self.media.rx_packets else time.monotonic()

    async def aclose(self, bye_wait: float = 2.0) -> None:
        """Hang up if needed (bounded) and release the socket and tasks."""
        if not self.ended.is_set() and self.dialog is not None and self.state != "calling":
            await self.hangup(bye_wait)
        self._end("closed", "phone_closed", 0)
        await self._tasks.aclose()
        await self.media.close()

    # --- endpoint callbacks (in-dialog traffic) ----------------------------------------
    def on_request(self, request: SipMessage, txn: ServerTransaction) -> None:
        dialog = self.dialog
        if dialog is None:
            self._ep.respond(txn, 481)
            return
        if not dialog.accept_remote_cseq(request):
            self._ep.respond(txn, 500, "CSeq out of order")
            return
        method = request.method
        if method == "BYE":
            self._ep.respond(txn, 200)
            self._end("bye_received", "remote_bye")
        elif method in ("INVITE", "UPDATE"):
            if not self._answer_offer(request, txn) or method != "INVITE":
                return
            self._pending_ack = txn
            self._tasks.spawn(txn.retransmit_until_ack(), "reinvite-2xx")
        elif method in ("OPTIONS", "INFO", "NOTIFY", "MESSAGE"):
            self._ep.respond(txn, 200, headers=[("Allow", ALLOW)])
        else:
            self._ep.respond(txn, 501)

    def _answer_offer(self, request: SipMessage, txn: ServerTransaction) -> bool:
        """200 to a re-INVITE or UPDATE (with our unchanged SDP when one is due); 488 for unusable SDP."""
        if request.body:
            try:
                self._apply_remote_sdp(request.body)
            except SipParseError:
                self._ep.respond(txn, 488)
                return False
        # an INVITE without SDP asks us for an offer; an UPDATE without SDP wants none
        with_sdp = request.method == "INVITE" or bool(request.body)
        sdp_headers = [("Content-Type", "application/sdp")] if with_sdp else []
        self._ep.respond(
            txn,
            200,
            body=self.local_sdp.to_bytes() if with_sdp else b"",
            headers=[("Contact", self._ep.contact), ("Allow", ALLOW)] + sdp_headers,
        )
        return True

    def on_ack(self, request: SipMessage) -> None:
        if request.body:
            try:
                self._apply_remote_sdp(request.body)  # answer to an offer we put in our 2xx
            except SipParseError:
                log.warning("%r: unusable SDP in ACK", self)
        if self._pending_ack is not None:
            self._pending_ack.ack()
            self._pending_ack = None
        self._event("acked")

    def on_2xx_retransmission(self, response: SipMessage) -> None:
        """Our ACK was lost: the peer repeats its 2xx (handled by :class:`OutgoingCall`)."""
