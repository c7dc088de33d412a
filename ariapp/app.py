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
from ariapp.cdr import CdrWriter
from ariapp.directory import Extension, load_directory
from ariapp.engine import build_engine
from ariapp.errors import AriError
from ariapp.events import EventPublisher, NullPublisher, stream_name
from ariapp.followup import FollowUp
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
        self.events = (EventPublisher(settings.redis_url, stream_name(settings.instance)) if settings.events
                       else NullPublisher())
        self.followup = FollowUp(settings.redis_url, settings.celery_queue) if settings.extract_after_call else None
        self.publish = observed(self.events.publish)  # every call event also updates the metrics
        self.media_totals = MediaTotals()  # RTP counters of finished AI calls
        self.tracker = CallTracker(self.cdr, settings.recordings_dir, self._spawn, self.publish,
                                   self.followup.call_finished if self.followup else None,
                                   keys=settings.recordings_keys)
        self.sessions: dict[str, AiCall] = {}
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

            sealed = await asyncio.to_thread(seal_leftovers, self.settings.recordings_dir,
                                             self.settings.recordings_keys)
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
        warm = getattr(self.engine.stt, "warmup", None)
        if warm is not None:
            await warm()
        retriever = self.engine.retriever
        if retriever is not None:  # load the embedding model now, not on the first question
            await asyncio.to_thread(retriever.embedder.embed, ["warm up"], purpose="query")
        self.models_ready.set()
        log.info("models and greetings ready in %.1f s", time.monotonic() - started)

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
            ari=self.ari, clock=self.clock, engine=self.engine, record=record, caller_channel_id=channel.id,
            ext=ext, media_host=self.settings.media_host, media_format=self.settings.media_format,
            jitter_ms=self.settings.jitter_ms, recordings_dir=self.settings.recordings_dir,
            greeting_pcm=self.greeting_pcm, on_waiter=self.waiter, max_seconds=self.settings.max_ai_call_seconds,
            journal=self.cdr.journal, publish=self.publish,
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
        ours = {s.media_channel_id for s in self.sessions.values()} | set(self.sessions)
        stasis_prefix = f"{self.settings.app_name},"
        for channel in channels:
            if channel.id in ours:
                continue
            raw_app = await self._dialplan_app(channel.id)
            orphan_media = channel.name.startswith("UnicastRTP/") and channel.id.endswith("-media")
            if orphan_media or (raw_app or "").startswith(stasis_prefix):
                log.warning("hanging up orphan channel %s (%s)", channel.id, channel.name)
                await self.ari.hangup(channel.id)
                continue
            if channel.technology == "PJSIP":
                call_id = await self.ari.get_variable(channel.id, CALL_ID_VAR)
                if call_id == channel.id:
                    self.tracker.adopt(channel, call_id)
        for bridge in bridges:
            bridge_id = str(bridge.get("id", ""))
            if bridge_id.endswith("-bridge") and bridge_id.removesuffix("-bridge") not in self.sessions:
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
