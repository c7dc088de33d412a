"""Follows every call through Asterisk (phone-to-phone and AI) from ARI events, for CDR and records.

The app subscribes to every channel (``channel:``), so it sees channels it does not own. A call is born when the
dialplan sets ``AIPBX_CALL_ID`` to the caller channel's own id (channels that inherit the variable
are legs of that call). ``Dial`` events give ringing/answer, ``ChannelHangupRequest`` who hung up
first, ``ChannelDestroyed`` of the caller channel the end. A call is finished — transcript,
metadata and exactly one CDR line — once its caller channel is gone and its AI session (if any)
has torn down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aipbx import logs, sealing_sweep
from aipbx.recordings import FILES
from aipbx.sealing import Keyring, NotSealedError, SealError, seal_directory
from ariapp import metrics
from ariapp.ari.models import AriEvent, Channel
from ariapp.calls.recording import write_call_files
from ariapp.cdr import ASTERISK_RESTART, CallRecord, CdrWriter, iso, utcnow_iso
from contract import CallAnswered, CallEnded, CallStarted, Event

log = logging.getLogger(__name__)
CALL_ID_VAR = "AIPBX_CALL_ID"


def termination_reason(record: CallRecord) -> str:
    if record.termination_reason:
        return record.termination_reason
    if record.ai_handled:
        return {"caller": "caller_hangup", "ai": "ai_hangup"}.get(record.hangup_by or "", "error")
    if record.answer:
        return "callee_hangup" if record.hangup_by == "callee" else "caller_hangup"
    if record.dial_status in (None, "", "RINGING", "PROGRESS", "CANCEL"):
        return "caller_cancelled"
    return "not_answered"


class CallTracker:
    def __init__(
        self,
        cdr: CdrWriter,
        recordings_dir: Path,
        spawn: Callable[[asyncio.Future | object], object],
        publish: Callable[[str, Event], None] | None = None,
        finished: Callable[[CallRecord, dict | None], Awaitable[None]] | None = None,
        keys: Keyring | None = None,
        answered: Callable[[CallRecord, str], None] | None = None,
    ) -> None:
        self.cdr = cdr
        self.keys = keys  # None (development only, ariapp.settings): recordings and transcripts stay in clear
        if keys is None:
            log.error(
                "AIPBX_RECORDINGS_KEYS is not set: recordings and transcripts are stored IN CLEAR "
                "(development settings only; production settings refuse to start without it)"
            )
        self.recordings_dir = recordings_dir
        self.calls: dict[str, CallRecord] = {}
        self._leg_of: dict[str, str] = {}  # channel id -> call id
        self._destroyed: set[str] = set()
        self._sessions_open: set[str] = set()
        self._reports: dict[str, dict] = {}
        self._spawn = spawn
        self._publish = publish or (lambda call_id, event: None)
        self._on_finished = finished
        self._on_answered = answered  # a phone answered (the callee's channel id): live transcript
        self.finished = 0
        self.finishing = 0  # calls whose files and CDR line are being written

    def call_of(self, channel_id: str) -> CallRecord | None:
        call_id = self._leg_of.get(channel_id, channel_id)
        return self.calls.get(call_id)

    def adopt(self, channel: Channel, call_id: str, journaled: CallRecord | None = None) -> CallRecord:
        """Start tracking a caller channel (from an event, or rebuilt after a restart: then the call's
        journal, when there is one, says what happened before, e.g. that the callee answered)."""
        record = self.calls.get(call_id)
        if record is None and journaled is not None:
            record = self.calls[call_id] = journaled
            for leg in journaled.legs:
                self._leg_of[leg] = call_id
        if record is None:
            record = CallRecord(
                call_id=call_id,
                caller=channel.caller_number,
                callee=channel.exten if channel.exten not in ("", "s") else channel.connected_number,
                start=iso(channel.creationtime) or utcnow_iso(),
            )
            self.calls[call_id] = record
            self.cdr.journal(record)
            self._publish(call_id, CallStarted(caller=record.caller, callee=record.callee, start=record.start))
        return record

    def on_event(self, event: AriEvent) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is None:
            return
        if event.type == "Dial":  # Dial events carry caller/peer, not channel
            self._on_Dial(event)
        elif event.channel is not None:
            handler(event, event.channel)

    def _on_ChannelVarset(self, event: AriEvent, channel: Channel) -> None:
        if str(event.raw.get("variable", "")).lstrip("_") != CALL_ID_VAR:
            return
        call_id = str(event.raw.get("value", ""))
        if call_id == channel.id:
            self.adopt(channel, call_id)
        elif call_id in self.calls:
            self._leg_of[channel.id] = call_id
            self.calls[call_id].legs.append(channel.id)

    def _on_Dial(self, event: AriEvent) -> None:
        caller, peer = event.caller, event.peer
        if caller is None or caller.id not in self.calls:
            return
        record = self.calls[caller.id]
        status = str(event.raw.get("dialstatus", ""))
        if status:
            record.dial_status = status
        if peer is not None and peer.id not in self._leg_of:
            self._leg_of[peer.id] = caller.id
            record.legs.append(peer.id)
        if status == "ANSWER" and peer is not None:  # ARI's Dial event always names the peer
            record.answer = iso(event.timestamp) or utcnow_iso()
            record.answered_by = peer.endpoint
            record.recording_dir = str(self.recordings_dir / record.call_id)
            self._publish(record.call_id, CallAnswered(answered_by=peer.endpoint, ai=False))
            if self._on_answered is not None:
                self._on_answered(record, peer.id)
        self.cdr.journal(record)

    def _on_ChannelHangupRequest(self, event: AriEvent, channel: Channel) -> None:
        record = self.call_of(channel.id)
        if record is not None and event.shutdown_hangup:
            record.termination_reason = record.termination_reason or ASTERISK_RESTART
        if record is None or record.hangup_by:
            return
        if channel.id == record.call_id:
            record.hangup_by = "caller"
        elif channel.id in record.legs and not channel.name.startswith(("UnicastRTP/", "Snoop/")):
            record.hangup_by = "callee"

    def _on_ChannelDestroyed(self, event: AriEvent, channel: Channel) -> None:
        record = self.calls.get(channel.id)
        if record is None:
            self._leg_of.pop(channel.id, None)
            return
        record.end = iso(event.timestamp) or utcnow_iso()
        cause = event.raw.get("cause")
        record.hangup_cause = int(cause) if isinstance(cause, int) else None
        self._destroyed.add(channel.id)
        self._maybe_finish(channel.id)

    def lost(self, call_id: str, reason: str) -> None:
        """The call's caller channel is gone from Asterisk and no event said so (Asterisk restarted, or
        the app's events were lost meanwhile): finish it as if it had just been destroyed."""
        record = self.calls.get(call_id)
        if record is None or call_id in self._destroyed:
            return
        record.termination_reason = record.termination_reason or reason
        record.end = record.end or utcnow_iso()  # the first moment we know of: no event gave the true one
        self._destroyed.add(call_id)
        self._maybe_finish(call_id)

    # --- AI sessions ---------------------------------------------------------------------------
    def session_started(self, call_id: str) -> None:
        self._sessions_open.add(call_id)
        self.calls[call_id].ai_handled = True
        self.cdr.journal(self.calls[call_id])

    def transcription_started(self, call_id: str) -> None:
        """A live transcript of this phone-to-phone call runs: its files wait for it (bounded)."""
        self._sessions_open.add(call_id)

    def session_finished(self, call_id: str, report: dict) -> None:
        self._sessions_open.discard(call_id)
        self._reports[call_id] = report
        self._maybe_finish(call_id)

    # --- finishing -----------------------------------------------------------------------------
    def _maybe_finish(self, call_id: str) -> None:
        if call_id in self._destroyed and call_id not in self._sessions_open:
            self._spawn(self._finish(call_id))

    async def _finish(self, call_id: str, reason: str | None = None) -> None:
        self.finishing += 1
        bound = logs.bind_call(call_id)  # also awaited from reconcile(): unbound again below
        try:
            await self._write_out(call_id, reason)
        finally:
            self.finishing -= 1
            logs.unbind(bound)

    async def _write_out(self, call_id: str, reason: str | None) -> None:
        record = self.calls.pop(call_id, None)
        self._destroyed.discard(call_id)
        if record is None:
            return
        for leg in record.legs:
            self._leg_of.pop(leg, None)
        if reason:
            record.termination_reason = reason
        record.end = record.end or utcnow_iso()
        record.termination_reason = termination_reason(record)
        report = self._reports.pop(call_id, None)
        if record.recording_dir:
            directory = Path(record.recording_dir)
            if not record.ai_handled:  # Asterisk's MixMonitor recorded it (a live transcript or not)
                await _mixmonitor_done(directory)
            try:
                await asyncio.to_thread(
                    write_call_files, directory, record, (report or {}).get("turns", []), (report or {}).get("extra")
                )
                metrics.recording_written()
            except OSError as exc:
                log.error("could not write call files for %s: %s", call_id, exc)
            if self.keys is not None:  # sealed before the CDR line and call.ended: no reader sees a half-sealed call
                await self._seal(call_id, directory, self.keys)
        if await asyncio.to_thread(self.cdr.write, record):  # fsync: off the media event loop
            self.finished += 1
            self._publish(record.call_id, CallEnded(cdr=record.to_cdr(), turns=turns_with_words(report)))
            if self._on_finished is not None:
                await self._on_finished(record, report)
            log.info(
                "call %s ended: %s (%s -> %s, ai=%s)",
                call_id,
                record.termination_reason,
                record.caller,
                record.callee,
                record.ai_handled,
            )

    async def _seal(self, call_id: str, directory: Path, keys: Keyring) -> None:
        """Seal the call's files; what fails stays in clear (never deleted), counted, for the sweep."""
        try:
            await asyncio.to_thread(seal_directory, directory, keys)
        except NotSealedError as exc:
            sealing_sweep.SEAL_FAILURES.inc(len(exc.failed))
            log.error("could not seal every recording of %s (the sweep retries): %s", call_id, exc)
        except (OSError, SealError) as exc:  # e.g. the directory itself is gone or unreadable
            sealing_sweep.SEAL_FAILURES.inc()
            log.error("could not seal the recordings of %s (the sweep retries): %s", call_id, exc)

    async def finish_orphan(self, record: CallRecord, reason: str | None) -> None:
        """Finish a call whose state was lost (app restart): CDR now, with what we know.

        ``reason`` None keeps the termination reason the record has (or derives one).
        """
        self.calls.setdefault(record.call_id, record)
        await self._finish(record.call_id, reason)


def turns_with_words(report: dict | None) -> int | None:
    """How many turns of the call's report have words (``CallEnded.turns``); None without a report."""
    if report is None:
        return None
    return sum(1 for turn in report.get("turns") or [] if str(turn.get("text", "")).strip())


MIXMONITOR_SETTLE_S = 3.0


async def _mixmonitor_done(directory: Path) -> None:
    """MixMonitor closes its files a moment after hang-up: wait (bounded) until their sizes settle."""
    last: tuple[int, ...] | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(MIXMONITOR_SETTLE_S):
            while True:
                sizes = tuple((directory / n).stat().st_size if (directory / n).exists() else -1 for n in FILES)
                if sizes == last and min(sizes) > 44:
                    return
                last = sizes
                await asyncio.sleep(0.2)
