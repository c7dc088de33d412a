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
import logging
import os
import time

import numpy as np

from ariapp.ari.client import CONNECTED, AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.media import MediaClock
from ariapp.calls.session import AiCall, Engine
from ariapp.calls.tracker import CALL_ID_VAR, CallTracker
from ariapp.calls.transcriber import LiveTranscription
from ariapp.cdr import CallRecord, CdrWriter
from ariapp.directory import Extension, load_directory
from ariapp.engine import build_engine
from ariapp.errors import AriError
from ariapp.events import EventPublisher, NullPublisher, stream_name
from ariapp.followup import FollowUp, after_call
from ariapp.media.resample import resample
from ariapp.metrics import MediaTotals, observed
from ariapp.settings import Settings

log = logging.getLogger(__name__)
RECONCILE_ATTEMPTS = 10


class App:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.directory = load_directory(settings.extensions_file)
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.app_name)
        self.clock = MediaClock()
        self.cdr = CdrWriter(settings.cdr_dir, settings.state_dir)
        self.engine = engine or build_engine(settings, os.environ)
        self.events = (
            EventPublisher(settings.redis_url, stream_name(settings.instance)) if settings.events else NullPublisher()
        )
        self.followup = (
            FollowUp(settings.celery_broker_url, settings.celery_queue) if settings.extract_after_call else None
        )
        self.publish = observed(self.events.publish)  # every call event also updates the metrics
        self.media_totals = MediaTotals()  # RTP counters of finished AI calls
        self.tracker = CallTracker(
            self.cdr,
            settings.recordings_dir,
            self._spawn,
            self.publish,
            self._after_call,
            keys=settings.recordings_keys,
            answered=self._start_transcription,
        )
        self.sessions: dict[str, AiCall] = {}
        self.transcriptions: dict[str, LiveTranscription] = {}
        self._waiters: dict[tuple[str, str], asyncio.Future] = {}
        self._greetings: dict[tuple[str, int], np.ndarray] = {}
        self._tasks: set[asyncio.Task] = set()
        self.connected = asyncio.Event()
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

        self.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.recordings_keys is not None:
            from ariapp.sealing import seal_leftovers

            sealed = await asyncio.to_thread(
                seal_leftovers, self.settings.recordings_dir, self.settings.recordings_keys
            )
            if sealed:
                log.warning("sealed %d call folder(s) left in clear by an earlier crash", sealed)
        runner = await serve_status(self, "127.0.0.1", self.settings.status_port)
        warm = self._spawn(self._warm_up())
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.clock.run())
                group.create_task(self.events.run())
                group.create_task(self.ari.run_events(self.on_event, on_disconnect=self.connected.clear))
        finally:
            warm.cancel()
            await self.shutdown()
            await runner.cleanup()

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
        for stt in {id(s): s for s in (self.engine.stts or {"": self.engine.stt}).values()}.values():
            warm = getattr(stt, "warmup", None)
            if warm is not None:
                await warm()
        try:
            await self._write_notices()
        except OSError as exc:  # callers then hear no notice before ringing: say so, but answer calls
            log.error("could not write the recording notices to %s: %s", self.settings.sounds_dir, exc)
        retriever = self.engine.retriever
        if retriever is not None:  # load the embedding models now, not on the first question
            await asyncio.to_thread(retriever.embedder.embed, ["warm up"], purpose="query")
            if retriever.gate is not None:
                await asyncio.to_thread(retriever.gate.warm)
        self.models_ready.set()
        log.info("models and greetings ready in %.1f s", time.monotonic() - started)

    async def _write_notices(self) -> None:
        """The recording notice of every language a recorded extension uses, as 8 kHz WAVs for the dialplan."""
        from ariapp.calls.notices import write_notice

        for language in {ext.language for ext in self.directory if ext.recorded}:
            text = self.directory.notice_text(language)
            if text:
                tts = self.engine.voice(language)
                await write_notice(
                    self.settings.sounds_dir, language, text, lambda t=text, v=tts: v.synthesize_all(t), tts.sample_rate
                )

    async def greeting_pcm(self, ext: Extension, rate: int) -> np.ndarray:
        key = (ext.greeting_text, rate)
        if key not in self._greetings:
            tts = self.engine.voice(ext.language)
            pcm = await tts.synthesize_all(ext.greeting_text)
            self._greetings[key] = resample(pcm, tts.sample_rate, rate)
        return self._greetings[key]

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
            recordings_dir=self.settings.recordings_dir,
            greeting_pcm=self.greeting_pcm,
            on_waiter=self.waiter,
            max_seconds=self.settings.max_ai_call_seconds,
            journal=self.cdr.journal,
            publish=self.publish,
        )
        self.sessions[record.call_id] = session
        self._spawn(self._run_session(session))

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
        """Tell the console how the transcript is made, and hand the call to the worker."""
        task, mode = after_call(record, report, self.directory.get(record.callee))
        if mode in ("live", "post_call"):
            self.publish("call.transcription", record.call_id, mode=mode)
        if task and self.followup is not None:
            await self.followup.send(task, record.call_id)

    # --- reconciliation after (re)connect ------------------------------------------------------------
    async def reconcile(self) -> None:
        """Clean up what a previous life of this app left in Asterisk, and adopt calls in progress."""
        for attempt in range(1, RECONCILE_ATTEMPTS + 1):
            try:
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
        journaled = {record.call_id: record for record in self.cdr.pending()}
        ours = {s.media_channel_id for s in self.sessions.values()} | set(self.sessions)
        ours |= {channel_id for t in self.transcriptions.values() for channel_id in t.channel_ids}
        our_bridges = {s.bridge_id for s in self.sessions.values()}
        our_bridges |= {bridge_id for t in self.transcriptions.values() for bridge_id in t.bridge_ids}
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
        for record in self.cdr.pending():
            if record.call_id in self.tracker.calls and record.call_id in live:
                continue
            await self.tracker.finish_orphan(record, "app_restart" if record.ai_handled else None)
        self.connected.set()

    async def _dialplan_app(self, channel_id: str) -> str | None:
        """``app_data`` of a channel sitting in Stasis, e.g. ``aipbx,missed,1002,NOANSWER``."""
        try:
            raw = await self.ari.request("GET", f"/channels/{channel_id}")
        except AriError:
            return None
        dialplan = (raw or {}).get("dialplan") or {}
        return str(dialplan.get("app_data", "")) if dialplan.get("app_name") == "Stasis" else None
