"""Put an AI call through to an operator's own phone: ring it, brief the operator, bridge them in.

Theory of operation
    console ── RPUSH aipbx:<instance>:transfers {TransferRequest} ──► TransferDesk (BLPOP)
      ──► the call's session (``AiCall.start_transfer``): the AI says so and holds the caller
    PhoneTransfer (this module), about the caller's existing call:
      too old ─► failed expired;  operator's endpoint offline ─► failed operator_unregistered
      the briefing (the session makes it: who, what they asked) is synthesised while the phone rings
      originate PJSIP/<operator ext> into this app (``ariapp.calls.legs``)       status ringing
        destroyed before answering, or ``ring_s`` passed ─► failed operator_no_answer | _busy | _declined
      StasisStart (answered) ─► play the briefing to the operator leg only      status briefing
        the operator hangs up meanwhile ─► failed operator_hung_up
      add the operator leg to the caller's bridge                                 status connected
    The caller's bridge keeps our External Media channel: the AI is silent from then on, but the
    session's recorder goes on hearing the bridge (caller and operator), so the recording covers the
    whole call, and the call keeps its one CDR line (``answered_by`` "ai,<operator ext>").

    Listening in (``TransferRequest.mode`` ``listen``), about the same call:
      originate PJSIP/<operator ext> as above (no briefing: they hear the call itself) status ringing
      answered ─► snoop the caller's channel ``spy=both`` (the caller and what the caller hears: the AI),
        ``whisper=none``; a bridge of its own with the snoop and the operator's leg  status listening
        The operator hears the call; what they say reaches only the snoop, which discards it (the
        whisper to nobody); the caller's bridge, the AI and the recording are untouched.
      the operator hangs up ─► status ended (the AI goes on)
      ``take_over`` (a second request, same transfer id) ─► the listening bridge and the snoop go, the
        operator's leg joins the caller's bridge, the AI falls silent              status connected
    From ``connected`` on, a take-over is a transfer: same session state, same end.

The briefing is a WAV the app writes into its sounds directory; Asterisk plays it from where it sees
that directory (the dialplan's ``AIPBX_SOUNDS`` global), and the file is removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.legs import Legs, caller_id, operator_failure
from ariapp.errors import AriError
from ariapp.tasks import cancel_and_wait
from contract import BadRequest, Event, TransferRequest, TransferStatus, transfer_requests_key
from contract.transfers import LISTEN

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

APP_ARG = "transfer"  # StasisStart args of the operator's leg: transfer,<transfer id>,operator
MAX_AGE_S = 60.0  # a request older than this is refused: the operator has stopped waiting
BRIEFING_MARGIN_S = 5.0  # beyond the briefing's length, before we stop waiting for its end
SOUNDS_VAR = "AIPBX_SOUNDS"
LISTEN_ENDED = "listen_ended"  # what run() returns when the listening operator hung up: not a failure


class TransferDesk:
    """The console's transfer requests, BLPOPped from ``aipbx:<instance>:transfers``."""

    def __init__(self, redis_url: str, instance: str) -> None:
        self.redis_url = redis_url
        self.key = transfer_requests_key(instance)
        self._client: redis.asyncio.Redis | None = None

    async def next(self, wait_s: float = 5.0) -> TransferRequest | None:
        """The next request, or None after ``wait_s`` (or a moment, when Redis is away: logged)."""
        import redis.asyncio as redis

        if self._client is None:
            self._client = redis.from_url(self.redis_url, socket_connect_timeout=2.0)
        try:
            item = await self._client.blpop([self.key], timeout=wait_s)  # type: ignore[misc]
        except (redis.RedisError, OSError) as exc:
            log.warning("transfer requests unavailable: %r", exc)
            await asyncio.sleep(1.0)
            return None
        if item is None:
            return None
        try:
            return TransferRequest.from_json(item[1])
        except BadRequest as exc:
            log.error("dropping a malformed transfer request: %s (%r)", exc, item[1][:200])
            return None


class PhoneTransfer:
    """One transfer of one AI call: owns the operator's leg; ``on_event`` is fed every ARI event."""

    def __init__(
        self,
        *,
        ari: AriClient,
        request: TransferRequest,
        caller_number: str,
        bridge_id: str,
        caller_channel: str = "",
        briefing: Callable[[], Awaitable[tuple[Path, float]]],
        publish: Callable[[str, Event], None],
        ring_s: int = 20,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.ari = ari
        self.request = request
        self.caller_number = caller_number
        self.bridge_id = bridge_id
        self.caller_channel = caller_channel or request.call_id
        self._briefing = briefing
        self._publish = publish
        self._now = now
        self.listening = request.mode == LISTEN
        base = f"{request.call_id}-{'listen' if self.listening else 'xfer'}-{request.transfer_id[:12]}"
        self.operator_leg = base
        self.snoop_id = f"{base}-snoop"  # what reconcile() hangs up when it finds one unowned
        self.listen_bridge = f"{base}-bridge"
        self.legs = Legs(ari, (self.operator_leg, self.snoop_id), ring_s)
        self._played: set[str] = set()
        self._take_over = asyncio.Event()
        self.status = ""
        self.connected_at: float | None = None

    @property
    def channel_ids(self) -> tuple[str, ...]:
        return (self.operator_leg, self.snoop_id) if self.listening else (self.operator_leg,)

    @property
    def bridge_ids(self) -> tuple[str, ...]:
        return (self.listen_bridge,) if self.listening else ()

    def take_over(self) -> bool:
        """The listening operator takes the caller (at once, or as soon as they are listening);
        False when this is not a listen in progress."""
        if not self.listening or self.status in ("connected", "ended", "failed"):
            return False
        self._take_over.set()
        self.legs.changed()
        return True

    @property
    def operator_gone(self) -> bool:
        return self.operator_leg in self.legs.gone

    def on_event(self, event: AriEvent) -> None:
        if event.type in ("PlaybackFinished", "PlaybackFailed"):
            playback = event.raw.get("playback") or {}
            self._played.add(str(playback.get("id", "")))
            self.legs.changed()
            return
        self.legs.on_event(event)

    async def run(self, caller_gone: Callable[[], bool]) -> str:
        """Ring, brief, bridge; returns the failure ("" when the operator has the caller)."""
        request = self.request
        if request.requested_at and self._now() - request.requested_at > MAX_AGE_S:
            return "expired"
        if await self.ari.endpoint_state("PJSIP", request.operator_ext) in (None, "offline"):
            return "operator_unregistered"
        if self.listening:
            return await self._listen(caller_gone)
        briefing = asyncio.ensure_future(self._briefing())  # synthesised while the phone rings
        try:
            self._status("ringing")
            await self.legs.ring(
                self.operator_leg,
                f"PJSIP/{request.operator_ext}",
                caller=caller_id("Transfer", self.caller_number if self.caller_number.isdigit() else "0"),
                app_args=f"{APP_ARG},{request.transfer_id},operator",
            )
            if not await self.legs.until_answered(self.operator_leg, watch=caller_gone):
                return "caller_hung_up" if caller_gone() else operator_failure(self.legs.gone.get(self.operator_leg))
            self._status("briefing")
            await self._brief(await briefing, caller_gone)
        finally:
            await cancel_and_wait(briefing)
            if not briefing.cancelled() and briefing.exception() is None:  # its file is not needed any more
                path, _ = briefing.result()
                await asyncio.to_thread(_remove, path)
        if caller_gone():
            return "caller_hung_up"
        if self.operator_gone:
            return "operator_hung_up"
        await self.ari.add_to_bridge(self.bridge_id, [self.operator_leg])
        self.connected_at = time.monotonic()
        self._status("connected")
        return ""

    async def _listen(self, caller_gone: Callable[[], bool]) -> str:
        """Ring, then let the operator hear the call until they hang up or take it over."""
        self._status("ringing")
        await self.legs.ring(
            self.operator_leg,
            f"PJSIP/{self.request.operator_ext}",
            caller=caller_id("Listen", self.caller_number if self.caller_number.isdigit() else "0"),
            app_args=f"{APP_ARG},{self.request.transfer_id},listener",
        )
        if not await self.legs.until_answered(self.operator_leg, watch=caller_gone):
            return "caller_hung_up" if caller_gone() else operator_failure(self.legs.gone.get(self.operator_leg))
        await self.ari.snoop(self.caller_channel, self.snoop_id, spy="both")
        if not await self.legs.until_answered(self.snoop_id, watch=lambda: caller_gone() or self.operator_gone):
            return "caller_hung_up" if caller_gone() else LISTEN_ENDED if self.operator_gone else "error"
        await self.ari.create_bridge(self.listen_bridge)
        await self.ari.add_to_bridge(self.listen_bridge, [self.snoop_id, self.operator_leg])
        self._status("listening")
        await self.legs.until(lambda: self._take_over.is_set() or self.operator_gone or caller_gone(), None)
        await self.stop_listening()
        if caller_gone():
            return "caller_hung_up"
        if self.operator_gone:
            return LISTEN_ENDED
        await self.ari.add_to_bridge(self.bridge_id, [self.operator_leg])
        self.connected_at = time.monotonic()
        self._status("connected")
        return ""

    async def stop_listening(self) -> None:
        """The listening bridge and the snoop go (the operator's leg stays up, out of any bridge)."""
        with contextlib.suppress(AriError, TimeoutError):
            async with asyncio.timeout(5.0):
                await self.ari.destroy_bridge(self.listen_bridge)
                await self.ari.hangup(self.snoop_id)

    async def _brief(self, briefing: tuple[Path, float], caller_gone: Callable[[], bool]) -> None:
        """Play the briefing to the operator's leg only, until it ends (or either side hangs up)."""
        path, seconds = briefing
        directory = await self.ari.global_variable(SOUNDS_VAR)
        if not directory:
            log.warning("Asterisk has no %s: the operator is put through without a briefing", SOUNDS_VAR)
            return
        playback_id = f"{self.operator_leg}-brief"
        await self.ari.play(self.operator_leg, f"sound:{directory.rstrip('/')}/{path.stem}", playback_id=playback_id)
        await self.legs.until(
            lambda: playback_id in self._played or self.operator_gone or caller_gone(),
            seconds + BRIEFING_MARGIN_S,
        )

    def _status(self, status: str, reason: str = "") -> None:
        self.status = status
        self._publish(
            self.request.call_id,
            TransferStatus(
                transfer_id=self.request.transfer_id,
                status=status,
                reason=reason,
                operator_ext=self.request.operator_ext,
            ),
        )

    def failed(self, reason: str) -> None:
        log.info("transfer %s to %s failed: %s", self.request.transfer_id, self.request.operator_ext, reason)
        self._status("failed", reason)

    def ended(self) -> None:
        self._status("ended")

    async def hang_up(self) -> None:
        if self.listening:
            await self.stop_listening()
        with contextlib.suppress(AriError, TimeoutError):
            async with asyncio.timeout(5.0):
                await self.ari.hangup(self.operator_leg)


def _remove(path: Path) -> None:
    for name in (path, path.with_suffix(".txt")):
        with contextlib.suppress(OSError):
            name.unlink()
