"""The ARI app process: one websocket, one media clock, many calls.

The websocket reader hands each event to :meth:`App.on_event`, which never awaits: it resolves
waiters (e.g. "StasisStart of the media channel I just created"), updates the call tracker and
forwards the event to the call's session. Sessions and finishing work run as tasks the app owns.

After every (re)connection the app reconciles with Asterisk: channels or bridges it created in a
previous life (an ARI app crash or restart) are hung up / destroyed, calls journaled but gone get
their CDR line, and phone-to-phone calls still in progress are adopted again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time

import numpy as np

from aipbx.audio.resample import resample
from aipbx.directory import Directory, Extension, load_directory
from aipbx.providers.errors import ProviderError
from ariapp.ari.client import CONNECTED, AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.admission import Admission
from ariapp.calls.callback import CallbackDesk, ClickToCall
from ariapp.calls.extensions import AsteriskDirectory, DirectoryFollower, load_cache, save_cache
from ariapp.calls.limits import BUSY_MESSAGE, REASONS, CallLimits, busy_exten, busy_sound
from ariapp.calls.media import MediaClock
from ariapp.calls.session import AiCall, Engine
from ariapp.calls.tracker import CALL_ID_VAR, CallTracker
from ariapp.calls.transcriber import LiveTranscription
from ariapp.calls.transfer import TransferDesk
from ariapp.cdr import ASTERISK_RESTART, EVENTS_LOST, CallRecord, CdrWriter
from ariapp.conversation.spoken import spoken
from ariapp.engine import build_engine
from ariapp.errors import AriError
from ariapp.events import EventPublisher, NullPublisher
from ariapp.followup import FollowUp, after_call
from ariapp.metrics import MediaTotals, observed
from ariapp.settings import Settings
from contract import (
    CallRejected,
    CallTranscription,
    Event,
    Latency,
    TransferStatus,
    VoicemailRecorded,
    stream_name,
)
from contract.transfers import TAKE_OVER

log = logging.getLogger(__name__)
RECONCILE_ATTEMPTS = 10


class App:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        # The console's last published directory (cached on disk), else the YAML seed until it publishes.
        cached = load_cache(settings.state_dir)
        self.directory_revision, self.directory = cached or (0, load_directory(settings.core.extensions_file))
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.app_name)
        self.asterisk_directory = AsteriskDirectory(self.ari, ring_override=settings.no_answer_override)
        self.clock = MediaClock()
        self.cdr = CdrWriter(settings.core.cdr_dir, settings.state_dir)
        self.engine = engine or build_engine(settings, os.environ)
        self.events = (
            EventPublisher(settings.core.redis_url, stream_name(settings.core.instance))
            if settings.events
            else NullPublisher()
        )
        self.followup = (
            FollowUp(settings.celery_broker_url, settings.celery_queue) if settings.extract_after_call else None
        )
        self.admission = Admission(settings.admit_latency_s)  # busy message while answers are too slow
        self.publish = observed(self._publish_and_admit)  # every call event also updates the metrics
        self.media_totals = MediaTotals()  # RTP counters of finished AI calls
        self.tracker = CallTracker(
            self.cdr,
            settings.core.recordings_dir,
            self._spawn,
            self.publish,
            self._after_call,
            keys=settings.core.recordings_keys,
            answered=self._start_transcription,
        )
        self.sessions: dict[str, AiCall] = {}
        self.limits = CallLimits(per_caller=settings.max_ai_calls_per_caller, total=settings.max_ai_calls)
        self.transcriptions: dict[str, LiveTranscription] = {}
        # operators' click-to-call requests (the console's Redis list, like the HITL replies)
        self.callback_desk = CallbackDesk(settings.core.redis_url, settings.core.instance) if settings.events else None
        self.callbacks: dict[str, ClickToCall] = {}
        # operators taking AI calls on their phones (the console's Redis list, like the call-backs)
        self.transfer_desk = TransferDesk(settings.core.redis_url, settings.core.instance) if settings.events else None
        self._waiters: dict[tuple[str, str], asyncio.Future] = {}
        self._greetings: dict[tuple[str, str, str, int], np.ndarray] = {}
        self._tasks: set[asyncio.Task] = set()
        self.connected = asyncio.Event()
        self._asterisk_started: str | None = None  # Asterisk's startup time at the last connection
        self.models_ready = asyncio.Event()

    # --- task ownership ----------------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", exc_info=task.exception())

    def waiter(self, event_type: str, channel_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters[(event_type, channel_id)] = future
        return future

    # --- main --------------------------------------------------------------------------------------
    async def run(self) -> None:
        from ariapp.status import serve_status

        self.settings.core.recordings_dir.mkdir(parents=True, exist_ok=True)
        await self._seal_leftovers()
        runner = await serve_status(self, "127.0.0.1", self.settings.status_port)
        warm = self._spawn(self._warm_up())
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.clock.run())
                group.create_task(self.events.run())
                group.create_task(self.ari.run_events(self.on_event, on_disconnect=self.connected.clear))
                if self.callback_desk is not None:
                    group.create_task(self._serve_callbacks(self.callback_desk))
                if self.transfer_desk is not None:
                    group.create_task(self._serve_transfers(self.transfer_desk))
                if self.settings.events:  # the console's directory (contract.directory)
                    follower = DirectoryFollower(
                        self.settings.core.redis_url,
                        self.settings.core.instance,
                        self.directory_revision,
                        self.set_directory,
                    )
                    group.create_task(follower.run())
        finally:
            warm.cancel()
            await self.shutdown()
            await runner.cleanup()

    async def _seal_leftovers(self) -> None:
        """Seal what finished calls left in clear (a crash before sealing, calls MixMonitor recorded while
        the app was down); nothing of ours is in flight yet, so a folder with metadata.json is sealed at
        once. The worker's beat sweep does the same while the app runs (aipbx.sealing_sweep)."""
        from aipbx.sealing_sweep import observe, sweep

        if self.settings.core.recordings_keys is None:  # development only: the tracker has said so loudly
            return
        report = await asyncio.to_thread(
            sweep, self.settings.core.recordings_dir, self.settings.core.recordings_keys, settle_s=0.0
        )
        observe(report, periodic=False)
        if report.found:
            log.warning(
                "found %d file(s) of %d finished call(s) in clear: %d sealed, %d left in clear",
                report.found,
                report.calls,
                report.sealed,
                report.left,
            )

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            session.hangup_by = session.hangup_by or "system"
            session.ended.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=8.0)
        await self.ari.close()

    async def _warm_up(self) -> None:
        """Load models and synthesise every greeting once, before the first call needs them."""
        started = time.monotonic()
        rate = 16000 if self.settings.media_format == "slin16" else 8000
        for ext in self.directory:
            await self.greeting_pcm(ext, rate)
        stts = list(self.engine.stts.values()) if self.engine.stts else [self.engine.stt]
        stts += list((self.engine.relisten_stts or {}).values())
        for stt in {id(s): s for s in stts}.values():
            warm = getattr(stt, "warmup", None)
            if warm is not None:
                await warm()
        warm = getattr(self.engine.turn_model, "warmup", None)
        if warm is not None:
            await warm()
        try:
            await self._write_prompts()
        except OSError as exc:  # callers then hear no notice (or busy message): say so, but answer calls
            log.error("could not write the dialplan's prompts to %s: %s", self.settings.sounds_dir, exc)
        retriever = self.engine.retriever
        if retriever is not None:  # load the embedding models now, not on the first question
            await asyncio.to_thread(retriever.embedder.embed, ["warm up"], purpose="query")
            if retriever.gate is not None:
                await asyncio.to_thread(retriever.gate.warm)
        self.models_ready.set()
        log.info("models and greetings ready in %.1f s", time.monotonic() - started)

    async def _write_prompts(self) -> None:
        """As 8 kHz WAVs for the dialplan: the recording notice of every language a recorded extension
        uses, and the busy message (a call over an AI call cap) of every language."""
        from ariapp.calls.notices import write_notice, write_prompt

        for language in {ext.language for ext in self.directory if ext.recorded}:
            text = self.directory.notice_text(language)
            if text:
                tts = self.engine.voice(language)
                await write_notice(
                    self.settings.sounds_dir,
                    language,
                    text,
                    functools.partial(tts.synthesize_all, text),
                    tts.sample_rate,
                )
        for language in self.directory.languages:
            text, tts = BUSY_MESSAGE[language], self.engine.voice(language)
            await write_prompt(
                self.settings.sounds_dir,
                busy_sound(language),
                text,
                functools.partial(tts.synthesize_all, text),
                tts.sample_rate,
            )

    async def greeting_pcm(self, ext: Extension, rate: int) -> np.ndarray:
        key = (ext.greeting_text, ext.language, ext.voice, rate)
        if key not in self._greetings:
            tts = self.engine.voice(ext.language, ext.voice)
            # the owner's and the business's names are in it: read as the voice must say them ("Jiyoung" ->
            # "Jee Young")
            text = spoken(ext.greeting_text, ext.language, tuple(filter(None, (ext.owner, ext.business))))
            try:
                pcm = await tts.synthesize_all(text)
            except ProviderError as exc:
                if not ext.voice:
                    raise
                # a named voice the provider cannot speak: its calls use the language's default voice
                log.error("voice %r of extension %s failed, the default voice speaks: %s", ext.voice, ext.ext, exc)
                tts = self.engine.forget_voice(ext.language, ext.voice)
                pcm = await tts.synthesize_all(text)
            self._greetings[key] = resample(pcm, tts.sample_rate, rate)
        return self._greetings[key]

    # --- the extension directory (ariapp.calls.extensions) ---------------------------------------------
    async def set_directory(self, revision: int, directory: Directory) -> None:
        """A new directory from the console: the next call uses it; Asterisk follows at once."""
        self.directory, self.directory_revision = directory, revision
        log.info("directory revision %d applied (%d extensions)", revision, len(directory))
        try:
            save_cache(self.settings.state_dir, revision, directory)
        except OSError as exc:
            log.error("could not cache the directory in %s: %s", self.settings.state_dir, exc)
        if self.connected.is_set():
            await self._apply_to_asterisk()
        self._spawn(self._refresh_sounds())

    async def _apply_to_asterisk(self) -> None:
        try:
            await self.asterisk_directory.apply(self.directory)
        except AriError as exc:  # applied again on the next change or reconnection
            log.error("could not apply the directory to Asterisk: %s", exc)

    async def _refresh_sounds(self) -> None:
        """The prompts of a language new to the directory, and the changed greetings, before a call needs them."""
        try:
            await self._write_prompts()
        except OSError as exc:
            log.error("could not write the dialplan's prompts to %s: %s", self.settings.sounds_dir, exc)
        rate = 16000 if self.settings.media_format == "slin16" else 8000
        for ext in self.directory:
            if ext.ai:
                await self.greeting_pcm(ext, rate)

    # --- events ------------------------------------------------------------------------------------
    def on_event(self, event: AriEvent) -> None:
        if event.type == CONNECTED:
            self._spawn(self.reconcile())
            return
        channel = event.channel
        if channel is not None:
            waiter = self._waiters.pop((event.type, channel.id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        self.tracker.on_event(event)
        if event.type == "StasisStart" and channel is not None and event.application == self.settings.app_name:
            if event.args[:1] == ["missed"]:
                self._start_ai_call(event)
        for session in self.sessions.values():
            session.on_event(event)
        for transcription in self.transcriptions.values():
            transcription.on_event(event)
        for callback in self.callbacks.values():
            callback.on_event(event)

    # --- click-to-call from the console ------------------------------------------------------------
    async def _serve_callbacks(self, desk: CallbackDesk) -> None:
        """Take the console's call-back requests while Asterisk is connected (``ariapp.calls.callback``)."""
        while True:
            await self.connected.wait()
            request = await desk.next(5.0)
            if request is None:
                continue
            if request.call_id in self.callbacks:
                log.warning("call-back %s is already under way: request ignored", request.callback_id)
                continue
            callback = ClickToCall(
                ari=self.ari,
                request=request,
                directory=self.directory,
                cdr=self.cdr,
                publish=self.publish,
                ring_s=self.settings.callback_ring_s,
                trunk=self.settings.callback_trunk,
            )
            self.callbacks[request.call_id] = callback
            self._spawn(self._run_callback(callback))

    async def _serve_transfers(self, desk: TransferDesk) -> None:
        """Take the console's transfer requests: the AI call's session puts its caller through."""
        while True:
            await self.connected.wait()
            request = await desk.next(5.0)
            if request is None:
                continue
            session = self.sessions.get(request.call_id)
            if session is None:
                log.warning("transfer %s: %s is not an AI call in progress", request.transfer_id, request.call_id)
                self.publish(
                    request.call_id,
                    TransferStatus(
                        transfer_id=request.transfer_id,
                        status="failed",
                        reason="not_ai_call",
                        operator_ext=request.operator_ext,
                    ),
                )
                continue
            if request.mode == TAKE_OVER:
                session.take_over(request)
            else:
                session.start_transfer(request)

    async def _run_callback(self, callback: ClickToCall) -> None:
        try:
            await callback.run()
        finally:
            self.callbacks.pop(callback.call_id, None)

    def _start_ai_call(self, event: AriEvent) -> None:
        channel = event.channel
        assert channel is not None
        ext = self.directory.get(event.args[1] if len(event.args) > 1 else channel.exten)
        record = self.tracker.adopt(channel, channel.id)
        if ext is None:
            log.error("StasisStart for unknown extension %s; hanging up", event.args)
            self._spawn(self.ari.hangup(channel.id))
            return
        record.dial_status = event.args[2] if len(event.args) > 2 else record.dial_status
        # Decided here, before any await: two StasisStarts can never both take the last place.
        limit = self.limits.refuse(record.caller, (s.record.caller for s in self.sessions.values()))
        if limit is None and self.admission.overloaded():
            limit = "capacity"
        if limit is not None:
            self._reject(record, ext, limit)
            return
        self.tracker.session_started(record.call_id)
        session = AiCall(
            ari=self.ari,
            clock=self.clock,
            engine=self.engine,
            record=record,
            caller_channel_id=channel.id,
            ext=ext,
            media_host=self.settings.media_host,
            media_format=self.settings.media_format,
            jitter_ms=self.settings.jitter_ms,
            recordings_dir=self.settings.core.recordings_dir,
            greeting_pcm=self.greeting_pcm,
            on_waiter=self.waiter,
            max_seconds=self.settings.max_ai_call_seconds,
            journal=self.cdr.journal,
            publish=self.publish,
            rtp_timeout_s=self.settings.rtp_timeout_s,
            sounds_dir=self.settings.sounds_dir,
            transfer_ring_s=self.settings.transfer_ring_s,
            hold_music_dir=self.settings.core.hold_music_dir,
        )
        self.sessions[record.call_id] = session
        self._spawn(self._run_session(session))

    def _publish_and_admit(self, call_id: str, event: Event) -> None:
        """Publish a call event; each answer's latency also tells admission control how the node copes."""
        self.events.publish(call_id, event)
        if isinstance(event, Latency) and "first_rtp" in event.marks:
            self.admission.observe(float(event.marks["first_rtp"]) / 1000)

    def _reject(self, record: CallRecord, ext: Extension, limit: str) -> None:
        """Over an AI call cap: the caller hears the busy message (dialplan, early media) and gets 486."""
        record.termination_reason = REASONS[limit]
        record.hangup_by = "ai"
        self.cdr.journal(record)
        log.warning("AI call cap reached (%s): %s from %s hears the busy message", limit, record.call_id, record.caller)
        self.publish(
            record.call_id,
            CallRejected(limit=limit, reason=record.termination_reason, active_ai_calls=len(self.sessions)),
        )
        self._spawn(self._play_busy(record.call_id, ext.language))

    async def _play_busy(self, channel_id: str, language: str) -> None:
        try:
            await self.ari.turn_away(channel_id, busy_exten(language))
        except AriError as exc:  # still refuse: a plain busy hang-up beats an unbounded AI call
            log.error("could not hand %s to the busy message: %s", channel_id, exc)
            try:
                await self.ari.hangup(channel_id, reason="busy")
            except AriError as hangup_exc:
                log.error("could not hang up %s: %s", channel_id, hangup_exc)

    async def _run_session(self, session: AiCall) -> None:
        call_id = session.record.call_id
        try:
            await session.run()
        finally:
            self.sessions.pop(call_id, None)
            self.media_totals.add(session.media)
            self.tracker.session_finished(call_id, session.report())

    # --- phone-to-phone calls: live transcript, then the worker ---------------------------------------
    def _start_transcription(self, record: CallRecord, callee_channel_id: str) -> None:
        """The callee answered: write the call down live if the budget allows (else after the call)."""
        ext = self.directory.get(record.callee)
        stt = self.engine.transcript_stt(ext.language) if ext is not None else None
        if ext is None or not ext.recorded or stt is None:
            return
        if len(self.transcriptions) >= self.settings.live_transcription_calls:
            log.info(
                "live transcript budget (%d calls) in use: %s is transcribed after the call",
                self.settings.live_transcription_calls,
                record.call_id,
            )
            return
        transcription = LiveTranscription(
            ari=self.ari,
            clock=self.clock,
            call_id=record.call_id,
            caller_channel_id=record.call_id,
            callee_channel_id=callee_channel_id,
            stt=stt,
            language=ext.language,
            media_host=self.settings.media_host,
            media_format=self.settings.media_format,
            jitter_ms=self.settings.jitter_ms,
            on_waiter=self.waiter,
            answered_at=time.monotonic(),
            publish=self.publish,
        )
        self.transcriptions[record.call_id] = transcription
        self.tracker.transcription_started(record.call_id)
        self._spawn(self._run_transcription(transcription))

    async def _run_transcription(self, transcription: LiveTranscription) -> None:
        try:
            await transcription.run()
        finally:
            self.transcriptions.pop(transcription.call_id, None)
            self.tracker.session_finished(transcription.call_id, transcription.report())

    async def _after_call(self, record: CallRecord, report: dict | None) -> None:
        """Tell the console how the transcript is made and of a voicemail left (the folder is sealed by
        now), and hand the call to the worker."""
        voicemail = ((report or {}).get("extra") or {}).get("voicemail")
        if voicemail:
            self.publish(record.call_id, VoicemailRecorded.from_data(voicemail))
        task, mode = after_call(record, report, self.directory.get(record.callee))
        if mode in ("live", "post_call"):
            self.publish(record.call_id, CallTranscription(mode=mode))
        if task and self.followup is not None:
            await self.followup.send(task, record.call_id)

    # --- reconciliation after (re)connect ------------------------------------------------------------
    async def reconcile(self) -> None:
        """Clean up what a previous life of this app left in Asterisk, and adopt calls in progress.

        Calls this life knew that are no longer in Asterisk ended while the websocket was down
        (Asterisk restarted, or the events were lost): they are ended here, with their reason."""
        known = set(self.tracker.calls)  # before the listing: a call that starts after it is not in it
        for attempt in range(1, RECONCILE_ATTEMPTS + 1):
            try:
                started = await self.ari.startup_time()
                channels = await self.ari.list_channels()
                bridges = await self.ari.list_bridges()
                break
            except AriError as exc:
                # e.g. a pooled keep-alive connection died with Asterisk: retry, or /ready would stay
                # false while the websocket is up again
                log.error("reconcile failed (attempt %d): %s", attempt, exc)
                await asyncio.sleep(0.5)
        else:
            return
        restarted = self._asterisk_started is not None and started not in (None, self._asterisk_started)
        self._asterisk_started = started or self._asterisk_started
        journaled = {record.call_id: record for record in self.cdr.pending()}
        ours = {s.media_channel_id for s in self.sessions.values()} | set(self.sessions)
        ours |= {channel_id for t in self.transcriptions.values() for channel_id in t.channel_ids}
        ours |= {channel_id for c in self.callbacks.values() for channel_id in c.channel_ids}
        ours |= {leg for s in self.sessions.values() if s.transfer is not None for leg in s.transfer.channel_ids}
        our_bridges = {s.bridge_id for s in self.sessions.values()}
        our_bridges |= {b for s in self.sessions.values() if s.transfer is not None for b in s.transfer.bridge_ids}
        our_bridges |= {bridge_id for t in self.transcriptions.values() for bridge_id in t.bridge_ids}
        our_bridges |= {c.bridge_id for c in self.callbacks.values()}
        stasis_prefix = f"{self.settings.app_name},"
        for channel in channels:
            if channel.id in ours:
                continue
            raw_app = await self._dialplan_app(channel.id)
            orphan_media = (
                channel.name.startswith("UnicastRTP/")
                and channel.id.endswith("-media")
                or channel.name.startswith("Snoop/")
                and channel.id.endswith("-snoop")
            )
            if orphan_media or (raw_app or "").startswith(stasis_prefix):
                log.warning("hanging up orphan channel %s (%s)", channel.id, channel.name)
                await self.ari.hangup(channel.id)
                continue
            if channel.technology == "PJSIP":
                call_id = await self.ari.get_variable(channel.id, CALL_ID_VAR)
                if call_id == channel.id:
                    self.tracker.adopt(channel, call_id, journaled.get(call_id))
        for bridge in bridges:
            bridge_id = str(bridge.get("id", ""))
            if bridge_id.endswith("-bridge") and bridge_id not in our_bridges:
                log.warning("destroying orphan bridge %s", bridge_id)
                await self.ari.destroy_bridge(bridge_id)
        live = {c.id for c in channels}
        for call_id in known - live:
            reason = ASTERISK_RESTART if restarted else EVENTS_LOST
            if (session := self.sessions.get(call_id)) is not None:
                session.lost(reason)  # its teardown removes its bridge and External Media channel
            if (transcription := self.transcriptions.get(call_id)) is not None:
                transcription.ended.set()
            self.tracker.lost(call_id, reason)
        for record in self.cdr.pending():
            if record.call_id in self.tracker.calls or record.call_id in known:
                continue  # in progress, or being finished just above
            await self.tracker.finish_orphan(record, "app_restart" if record.ai_handled else None)
        await self._apply_to_asterisk()  # a restarted Asterisk has only the seed's globals
        self.connected.set()

    async def _dialplan_app(self, channel_id: str) -> str | None:
        """``app_data`` of a channel sitting in Stasis, e.g. ``aipbx,missed,1002,NOANSWER``."""
        try:
            raw = await self.ari.request("GET", f"/channels/{channel_id}")
        except AriError:
            return None
        dialplan = (raw or {}).get("dialplan") or {}
        return str(dialplan.get("app_data", "")) if dialplan.get("app_name") == "Stasis" else None
