"""Click-to-call from the console: ring the operator's own phone, then the caller's, and bridge the two.

Theory of operation
    console ── RPUSH aipbx:<instance>:callbacks {CallbackRequest} ──► CallbackDesk (BLPOP) ──► ClickToCall
    ClickToCall:
      operator's endpoint offline? ─► failed operator_unregistered
      originate PJSIP/<operator ext> into this app (ariapp.calls.legs) (callerId: the number to be called)
        destroyed before answering ─► failed operator_no_answer | operator_busy | operator_declined
      StasisStart (the operator answered) ─► ringback tone to the operator
      originate PJSIP/<number> (an extension; an outside number only through AIPBX_CALLBACK_TRUNK)
        destroyed before answering ─► failed caller_busy | caller_no_answer | caller_declined | caller_unreachable
        the operator hangs up meanwhile ─► failed operator_hung_up
      StasisStart (the caller answered) ─► mixing bridge [operator, caller] ─► connected
      either hangs up ─► the other is hung up, the bridge destroyed ─► ended
    Every step is a ``callback.status`` event on the stream, about the new call's id (the console made
    its row, linked to the earlier call); the call gets one CDR line like every other (caller: the
    number called back, callee: the extension it belongs to, answered_by: the operator's phone).

The requests come only from the console (an operator's click), never from the conversation: no
model text can reach this module, and the ARI client dials only ``PJSIP/<digits>[@trunk]``.
Call-backs are not recorded (no recording notice is played to either party).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aipbx import logs
from aipbx.directory import Directory
from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.legs import Legs, operator_failure, why_unanswered
from ariapp.calls.legs import caller_id as _caller_id
from ariapp.cdr import CallRecord, CdrWriter, utcnow_iso
from ariapp.errors import AriError
from contract import (
    BadRequest,
    CallAnswered,
    CallbackRequest,
    CallbackStatus,
    CallEnded,
    CallStarted,
    Event,
    callback_requests_key,
)

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

APP_ARG = "callback"  # StasisStart args of our legs: callback,<callback id>,operator|caller
MAX_AGE_S = 60.0  # a request older than this is refused: the operator has stopped waiting


def caller_failure(cause: int | None) -> str:
    return f"caller_{why_unanswered(cause)}"


class CallbackDesk:
    """The console's click-to-call requests, BLPOPped from ``aipbx:<instance>:callbacks``."""

    def __init__(self, redis_url: str, instance: str) -> None:
        self.redis_url = redis_url
        self.key = callback_requests_key(instance)
        self._client: redis.asyncio.Redis | None = None

    async def next(self, wait_s: float = 5.0) -> CallbackRequest | None:
        """The next request, or None after ``wait_s`` (or a moment, when Redis is away: logged)."""
        import redis.asyncio as redis

        if self._client is None:
            self._client = redis.from_url(self.redis_url, socket_connect_timeout=2.0)
        try:
            item = await self._client.blpop([self.key], timeout=wait_s)  # type: ignore[misc]
        except (redis.RedisError, OSError) as exc:
            log.warning("call-back requests unavailable: %r", exc)
            await asyncio.sleep(1.0)
            return None
        if item is None:
            return None
        try:
            return CallbackRequest.from_json(item[1])
        except BadRequest as exc:
            log.error("dropping a malformed call-back request: %s (%r)", exc, item[1][:200])
            return None


class ClickToCall:
    """One call-back: owns its two legs and its bridge; ``on_event`` is fed every ARI event (never blocks)."""

    def __init__(
        self,
        *,
        ari: AriClient,
        request: CallbackRequest,
        directory: Directory,
        cdr: CdrWriter,
        publish: Callable[[str, Event], None],
        ring_s: int = 30,
        trunk: str = "",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.ari = ari
        self.request = request
        self.directory = directory
        self.cdr = cdr
        self._publish = publish
        self.ring_s = ring_s
        self.trunk = trunk
        self._now = now
        self.call_id = request.call_id
        self.operator_leg = f"{self.call_id}-op"
        self.caller_leg = f"{self.call_id}-peer"
        self.bridge_id = f"{self.call_id}-bridge"
        self.channel_ids = (self.operator_leg, self.caller_leg)
        self.record = CallRecord(call_id=self.call_id, caller=request.number, callee=request.callee, start=utcnow_iso())
        self.legs = Legs(ari, self.channel_ids, ring_s)
        self.answered = self.legs.answered
        self.gone = self.legs.gone
        self.status = ""
        self.failure = ""

    # --- events from the ARI reader ----------------------------------------------------------------
    def on_event(self, event: AriEvent) -> None:
        self.legs.on_event(event)

    # --- the call --------------------------------------------------------------------------------------
    async def run(self) -> None:
        logs.bind_call(self.call_id)
        self.cdr.journal(self.record)
        request = self.request
        self._publish(self.call_id, CallStarted(caller=request.number, callee=request.callee, start=self.record.start))
        try:
            self.failure = await self._connect()
            if not self.failure:
                await self.legs.until(lambda: bool(self.gone.keys() & set(self.channel_ids)), None)
                self.record.hangup_by = "caller" if self.caller_leg in self.gone else "operator"
                self.record.termination_reason = f"{self.record.hangup_by}_hangup"
        except AriError as exc:
            log.error("call-back %s failed: %s", request.callback_id, exc)
            self.failure = "error"
        finally:
            await asyncio.shield(self._teardown())

    async def _connect(self) -> str:
        """Ring the operator, then the caller, and bridge them; returns the failure ("" when connected)."""
        request = self.request
        if request.requested_at and self._now() - request.requested_at > MAX_AGE_S:
            return "expired"
        operator = self.directory.get(request.operator_ext)
        owner = self.directory.get(request.callee)
        if operator is None:
            return "invalid"
        endpoint = self._endpoint(request.number)
        if endpoint is None:
            return "no_outside_line"
        if await self.ari.endpoint_state("PJSIP", operator.ext) in (None, "offline"):
            return "operator_unregistered"
        self._status("ringing_operator")
        await self.legs.ring(
            self.operator_leg,
            f"PJSIP/{operator.ext}",
            caller=_caller_id("Call-back", request.number),
            app_args=f"{APP_ARG},{request.callback_id},operator",
        )
        if not await self.legs.until_answered(self.operator_leg):
            return operator_failure(self.gone.get(self.operator_leg))
        self._status("ringing_caller")
        ringback = f"{self.call_id}-ringback"
        with contextlib.suppress(AriError):  # the operator hearing silence is no reason to stop
            await self.ari.play(self.operator_leg, "tone:ring", playback_id=ringback)
        await self.legs.ring(
            self.caller_leg,
            endpoint,
            caller=_caller_id(owner.owner if owner else "", request.callee or operator.ext),
            app_args=f"{APP_ARG},{request.callback_id},caller",
        )
        answered = await self.legs.until_answered(self.caller_leg, watch=lambda: self.operator_leg in self.gone)
        with contextlib.suppress(AriError):
            await self.ari.stop_playback(ringback)
        if self.operator_leg in self.gone:
            return "operator_hung_up"
        if not answered:
            self.record.dial_status = why_unanswered(self.gone.get(self.caller_leg)).upper()
            return caller_failure(self.gone.get(self.caller_leg))
        await self.ari.create_bridge(self.bridge_id)
        await self.ari.add_to_bridge(self.bridge_id, [self.operator_leg, self.caller_leg])
        self.record.answer = utcnow_iso()
        self.record.answered_by = f"PJSIP/{operator.ext}"
        self.record.dial_status = "ANSWER"
        self.cdr.journal(self.record)
        self._publish(self.call_id, CallAnswered(answered_by=self.record.answered_by, ai=False))
        self._status("connected")
        return ""

    def _endpoint(self, number: str) -> str | None:
        """Where ``number`` is dialled: an extension of this PBX directly, anything else through the trunk."""
        if self.directory.get(number) is not None:
            return f"PJSIP/{number}"
        if self.trunk:
            return f"PJSIP/{number.lstrip('+')}@{self.trunk}"
        return None

    def _status(self, status: str, reason: str = "") -> None:
        self.status = status
        self._publish(self.call_id, CallbackStatus(callback_id=self.request.callback_id, status=status, reason=reason))

    async def _teardown(self) -> None:
        try:
            async with asyncio.timeout(5.0):
                with contextlib.suppress(AriError):
                    await self.ari.destroy_bridge(self.bridge_id)
                for leg in self.channel_ids:
                    with contextlib.suppress(AriError):
                        await self.ari.hangup(leg)
        except TimeoutError:
            log.warning("teardown of call-back %s incomplete", self.call_id)
        record = self.record
        record.end = utcnow_iso()
        if self.failure:
            record.termination_reason = self.failure
            record.hangup_by = record.hangup_by or "system"
        if self.failure:
            log.info("call-back %s failed: %s", self.request.callback_id, self.failure)
            self._status("failed", self.failure)
        else:
            self._status("ended")
        if await asyncio.to_thread(self.cdr.write, record):
            self._publish(self.call_id, CallEnded(cdr=record.to_cdr()))
