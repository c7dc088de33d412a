"""One AI-answered call: set up External Media, talk, tear everything down on every path.

Theory of operation
    StasisStart(caller, args=[missed, ext, dialstatus])
      -> bind our UDP socket -> POST externalMedia with our own channel id
      -> wait for that channel's StasisStart (bridging earlier fails with 422 about half the time)
      -> mixing bridge with both channels -> answer the caller LAST (no audio lost)
      -> register on the media clock -> greeting -> listen / reply ... until the caller hangs up,
         the time cap passes, or the caller's phone sends no RTP for ``rtp_timeout_s`` (watchdog)
    Teardown (shielded, time-bounded, whatever happened): leave the clock, destroy the bridge, hang up
    the media channel (404 = already gone = fine), close the socket, close the recording, keep the
    caller's voicemail if they left one (``ariapp.calls.voicemail``), report.

The session owns its tasks (one TaskGroup); events reach it through its queue, so the ARI reader
never waits on a call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aipbx import logs
from aipbx.audio.listener import Listener
from aipbx.audio.resample import resample
from aipbx.directory import Extension
from aipbx.providers.base import EndOfTurn, SpeechToText, TextToSpeech
from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.hold_music import hold_music_for
from ariapp.calls.media import CallMedia, MediaClock, media_codec
from ariapp.calls.notices import write_prompt
from ariapp.calls.recording import CallRecording
from ariapp.calls.transfer import LISTEN_ENDED, PhoneTransfer
from ariapp.calls.voicemail import FILE as VOICEMAIL_FILE
from ariapp.calls.voicemail import MessageRecorder, write_message
from ariapp.calls.watchdog import RtpWatchdog
from ariapp.cdr import ASTERISK_RESTART, CallRecord, utcnow_iso
from ariapp.conversation.answerer import Answerer
from ariapp.conversation.confirm import CONFIRM_AT
from ariapp.conversation.echo import EchoGuard
from ariapp.conversation.frames import Utterance
from ariapp.conversation.hitl import Desk, HitlConfig
from ariapp.conversation.machine import Ev
from ariapp.conversation.options import ConversationConfig
from ariapp.conversation.orchestrator import Orchestrator
from ariapp.conversation.spoken import spoken
from ariapp.conversation.transfer import Heard, briefing
from ariapp.errors import AriError, MediaError
from ariapp.media.audio import Speaker
from ariapp.tasks import TaskScope, cancel_and_wait
from ariapp.timed import TimedRetriever
from contract import CallAnswered, Event, TransferRequest

log = logging.getLogger(__name__)
WATCHDOG_TICKS = 25  # the RTP watchdog looks every 25 media ticks (0.5 s)
VOICEMAIL_STT_S = 60.0  # the caller is gone: the message's transcript may take this long, then the worker does it


class CallEnded(Exception):
    """The caller hung up (or the call was torn down) while we were doing something."""


@dataclass
class Engine:
    """The providers a call talks with, loaded once per process and shared by every call.

    ``echo=True`` (benchmarks only, ``AIPBX_BENCH_ECHO=1``): after the greeting the caller's audio
    goes back to the caller through the jitter buffer, VAD and recording — the whole media plane
    without speech models.
    """

    stt: SpeechToText | None
    tts: TextToSpeech
    answerer: Answerer
    retriever: TimedRetriever | None = None
    echo: bool = False
    end_of_turn_ms: int = 400
    pause_ms: int = 200
    voices: Mapping[str, TextToSpeech] | None = None  # per call language ("en-US", "ko-KR")
    desk: Desk | None = None  # human in the loop (ariapp.conversation.hitl.RedisDesk); None: off
    hitl: HitlConfig | None = None  # its HitlConfig
    stts: Mapping[str, SpeechToText] | None = None  # per call language; a ko-KR call needs a Korean model
    transcript_stts: Mapping[str, SpeechToText] | None = None  # the low-priority lane writing calls down
    #: per call language, the recogniser an unsure question is heard again with (None: the call's own)
    relisten_stts: Mapping[str, SpeechToText] | None = None
    confirm_at: float = CONFIRM_AT  # "did you mean …?" from this gate probability (0: never)
    turn_model: EndOfTurn | None = None  # hears whether the caller finished; None: the words alone
    #: Builds a named voice of a language's provider (an extension's ``voice`` setting); None: one voice
    #: per language. Built on first use and kept; a voice the provider refuses falls back to the default.
    voice_factory: Callable[[str, str], TextToSpeech] | None = None
    _named: dict[tuple[str, str], TextToSpeech] = field(default_factory=dict)

    def voice(self, language: str, name: str = "") -> TextToSpeech:
        default = (self.voices or {}).get(language, self.tts)
        if not name or self.voice_factory is None:
            return default
        key = (language, name)
        if key not in self._named:
            try:
                self._named[key] = self.voice_factory(language, name)
            except Exception as exc:  # noqa: BLE001 - any provider's refusal: the caller still hears a voice
                log.error("voice %r of %s unavailable, the default voice speaks: %r", name, language, exc)
                self._named[key] = default
        return self._named[key]

    def forget_voice(self, language: str, name: str) -> TextToSpeech:
        """``name`` failed to speak: the language's default voice stands in for it from now on."""
        default = (self.voices or {}).get(language, self.tts)
        self._named[(language, name)] = default
        return default

    def stt_for(self, language: str) -> SpeechToText | None:
        return (self.stts or {}).get(language, self.stt)

    def relisten_stt(self, language: str) -> SpeechToText | None:
        """The recogniser that hears an unsure question again (``engine.build_relisten_stts``)."""
        return (self.relisten_stts or {}).get(language) or self.stt_for(language)

    def transcript_stt(self, language: str) -> SpeechToText | None:
        """The recogniser that writes down phone-to-phone calls (None: only after the call)."""
        return (self.transcript_stts or {}).get(language)


class AiCall:
    def __init__(
        self,
        *,
        ari: AriClient,
        clock: MediaClock,
        engine: Engine,
        record: CallRecord,
        caller_channel_id: str,
        ext: Extension,
        media_host: str,
        media_format: str,
        jitter_ms: int,
        recordings_dir: Path,
        greeting_pcm: Callable[[Extension, int], Awaitable[np.ndarray]],
        on_waiter: Callable[[str, str], asyncio.Future],
        max_seconds: int,
        journal: Callable[[CallRecord], None],
        publish: Callable[[str, Event], None] | None = None,
        rtp_timeout_s: float = 0,
        hold_music_dir: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sounds_dir: Path | None = None,
        transfer_ring_s: int = 20,
    ) -> None:
        self.ari = ari
        self.clock = clock
        self.engine = engine
        self.record = record
        self.caller_id = caller_channel_id
        self.ext = ext
        self.codec = media_codec(media_format)
        self.media = CallMedia(self.codec, jitter_ms)
        self.media_channel_id = f"{record.call_id}-media"
        self.bridge_id = f"{record.call_id}-bridge"
        self.recording = CallRecording(recordings_dir / record.call_id, self.codec.sample_rate)
        self._media_format = media_format
        self._media_host = media_host
        self._greeting_pcm = greeting_pcm
        self._hold_music_dir = hold_music_dir
        self._waiter = on_waiter
        self._max_seconds = max_seconds
        self._rtp_timeout_s = rtp_timeout_s  # 0: no watchdog
        self._now = monotonic  # the call's clock (a virtual one in tests)
        self.watchdog: RtpWatchdog | None = None
        self._journal = journal
        self._publish = publish or (lambda call_id, event: None)
        self._loopback = False  # benchmark mode: the caller hears themselves
        self._frames: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self.speaker = Speaker(self.codec.frame_samples, monotonic)
        self.listener = Listener(
            self.codec.sample_rate,
            self._on_caller_started,
            self._on_utterance,
            end_ms=engine.end_of_turn_ms,
            pause_ms=engine.pause_ms,
            on_pause=self._on_pause,
        )
        self.echo_guard = EchoGuard(self.codec.sample_rate)
        self._echo_suspect = False
        self._caller_votes = 0
        self._ticks = 0
        self.orchestrator: Orchestrator | None = None
        self.ended = asyncio.Event()
        self.hangup_by: str | None = None
        self.answered_at: float | None = None
        self.message: MessageRecorder | None = None  # the caller's voicemail, once the tone has played
        self._message_over: asyncio.Future[str] | None = None
        self._message_meta: dict = {}
        self.voicemail: dict | None = None  # what the report says of a kept message
        self._sounds_dir = sounds_dir  # where a transfer's briefing is written (None: no transfers)
        self._transfer_ring_s = transfer_ring_s
        self.transfer: PhoneTransfer | None = None  # putting the caller through to an operator's phone
        self._transfer_task: asyncio.Task | None = None
        # what the call runs beside its media (the conversation, a transfer): none outlives the call
        self.tasks = TaskScope(f"call {record.call_id}", 5.0)
        self.transferred = False  # the operator has the caller: the AI is quiet, the recorder goes on
        self._cap: asyncio.Timeout | None = None  # the AI call's time cap (lifted once a person has the caller)
        self._left = ""  # how the call ended from Asterisk's side, when it did: logged by the call's task

    # --- events from the ARI reader (must not block) -------------------------------------------
    def on_event(self, event: AriEvent) -> None:
        if self.transfer is not None:
            self.transfer.on_event(event)
        channel = event.channel
        if channel is None:
            return
        if (
            self.transferred
            and self.transfer is not None
            and channel.id == self.transfer.operator_leg
            and event.type in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest")
        ):
            self.hangup_by = self.hangup_by or "operator"
            self.ended.set()
            return
        if event.type in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest") and channel.id in (
            self.caller_id,
            self.media_channel_id,
        ):
            if event.shutdown_hangup:  # not the caller: Asterisk is going down (the media channel goes first)
                self.lost(ASTERISK_RESTART)
            if self.hangup_by is None:
                self.hangup_by = "caller" if channel.id == self.caller_id else "system"
            if not self.ended.is_set():  # which side went first, how and when (logged by the call's task)
                side = "caller's" if channel.id == self.caller_id else "media"
                self._left = f"{side} channel left ({event.type}, cause {event.raw.get('cause', '-')}) "
                self._left += f"{self._since_answer():.1f} s after the answer"
            self.ended.set()

    def lost(self, reason: str) -> None:
        """The call is gone from Asterisk for a reason no caller or AI chose (Asterisk shut down or
        restarted, or the call vanished while the app was not receiving its events): end it here."""
        if self.ended.is_set():
            return
        log.warning("AI call %s ended by %s", self.record.call_id, reason)
        self.hangup_by = self.hangup_by or "system"
        self.record.termination_reason = self.record.termination_reason or reason
        self.ended.set()

    # --- media clock tick (must not block) -------------------------------------------------------
    def _send(self) -> None:
        """Phase 1 of a tick: exactly one frame out, as close to the deadline as possible."""
        inbound = self.media.receive_frame()
        outbound = self.speaker.next_frame()
        if outbound is None and self._loopback:
            outbound = inbound
        self.media.send_frame(outbound)
        self._frames = (inbound, outbound)

    def _process(self) -> None:
        """Phase 2 of a tick, after every call has sent: recording, echo reference, VAD."""
        inbound, outbound = self._frames
        self._ticks += 1
        self.recording.write(inbound, outbound)
        self.echo_guard.feed(inbound, outbound, self.codec.frame_samples)
        self.listener.feed(inbound)
        if self.message is not None and self.message.ended is None:
            ended = self.message.feed(inbound, self.listener.in_speech)
            if ended and self._message_over is not None and not self._message_over.done():
                self._message_over.set_result(ended)
        if self._echo_suspect and self._ticks % 5 == 0:
            self._recheck_echo()
        if self.watchdog is not None and self._ticks % WATCHDOG_TICKS == 0:
            self._check_rtp()

    def _rtp_received(self) -> int:
        """RTP packets from Asterisk so far, wanted or not (a comfort-noise packet is a sign of life too)."""
        return self.media.stats.rx_packets + self.media.stats.rx_dropped_payload_type

    def _check_rtp(self) -> None:
        """The silence watchdog: the caller's phone stopped sending RTP, so the call is over for us."""
        assert self.watchdog is not None
        if not self.watchdog.expired(self._rtp_received(), self._now()) or self.ended.is_set():
            return
        log.warning(
            "no RTP from the caller for %.0f s: ending AI call %s", self.watchdog.timeout_s, self.record.call_id
        )
        self.watchdog = None
        self.hangup_by = "ai"
        self.record.termination_reason = "rtp_timeout"
        self.ended.set()

    def _on_caller_started(self) -> None:
        """A speech onset. While our voice is on the line it may be our own echo: check first."""
        if self.echo_guard.recently_spoke() and self.echo_guard.is_echo():
            self._echo_suspect = True
            self.listener.discard_current()
            return
        self._caller_onset()

    def _recheck_echo(self) -> None:
        """An onset judged echo is re-judged while it lasts: the caller may be talking over it.
        Two loud, uncorrelated checks in a row (100 ms apart) are needed to call it the caller."""
        if not self.listener.in_speech:
            self._echo_suspect = False
            self._caller_votes = 0
            return
        self._caller_votes = self._caller_votes + 1 if self.echo_guard.caller_over_echo() else 0
        if self._caller_votes >= 2:
            self._echo_suspect = False
            self._caller_votes = 0
            self.listener.keep_current()
            self._caller_onset()

    def _caller_onset(self) -> None:
        if self.orchestrator is not None:
            self.orchestrator.post(Ev.CALLER_ONSET)

    def _on_pause(self, pcm: np.ndarray) -> None:
        if self.orchestrator is not None:
            self.orchestrator.on_pause(pcm)

    def _on_utterance(self, pcm: np.ndarray) -> None:
        if self.orchestrator is not None:
            ended_at = self._now() - self.engine.end_of_turn_ms / 1000
            self.orchestrator.post(Ev.UTTERANCE, Utterance(pcm, ended_at))

    # --- voicemail (ariapp.conversation.hitl.MessageTaker) -----------------------------------------
    async def take_message(self, request_id: str, reason: str) -> str:
        """Record the caller from the next tick until the message is over (see ``ariapp.calls.voicemail``)."""
        hitl = self.engine.hitl
        assert hitl is not None, "voicemail follows a help request"
        self.listener.enabled = False  # nothing said now is a question: no recognition on pauses
        self._message_meta = {"request_id": request_id, "reason": reason, "t": round(self._since_answer(), 2)}
        self._message_over = asyncio.get_running_loop().create_future()
        self.message = MessageRecorder(
            self.codec.sample_rate,
            self.codec.frame_samples,
            max_s=hitl.voicemail_max_s,
            silence_s=hitl.voicemail_silence_s,
        )
        return await self._message_over

    async def _keep_message(self) -> None:
        """After the call: write the message beside the recordings, and what the recogniser heard in it."""
        message = self.message
        if message is None:
            return
        ended = message.hang_up()
        if not message.worth_keeping:
            log.info("the caller left no message (%s after %.1f s)", ended, message.seconds)
            return
        pcm = message.pcm
        try:
            await asyncio.to_thread(write_message, self.recording.directory, pcm, message.rate)
        except OSError as exc:
            log.error("could not keep the voicemail of %s: %s", self.record.call_id, exc)
            return
        self.voicemail = {
            **self._message_meta,
            "file": VOICEMAIL_FILE,
            "duration": round(message.seconds, 2),
            "ended": ended,
            "callee": self.ext.ext,
            "language": self.ext.language,
            "transcript": await self._transcribe_message(pcm, message.rate),
        }
        log.info("voicemail kept: %.1f s (%s)", message.seconds, ended)

    async def _transcribe_message(self, pcm: np.ndarray, rate: int) -> str:
        """The message's words ("" when the recogniser fails: the console has the worker try again)."""
        stt = self.engine.transcript_stt(self.ext.language) or self.engine.stt_for(self.ext.language)
        if stt is None:
            return ""
        lang = "ko" if self.ext.language.startswith("ko") else "en"
        try:
            async with asyncio.timeout(VOICEMAIL_STT_S):
                result = await stt.transcribe(resample(pcm, rate, stt.sample_rate), lang)
        except Exception as exc:  # a failed recogniser must not lose the message itself
            log.warning("voicemail of %s not transcribed here: %r", self.record.call_id, exc)
            return ""
        return result.text.strip()

    # --- transfer to an operator's phone (ariapp.calls.transfer) ---------------------------------------
    def start_transfer(self, request: TransferRequest) -> None:
        """Put the caller through to ``request.operator_ext``; a call that cannot is answered ``failed``."""
        transfer = PhoneTransfer(
            ari=self.ari,
            request=request,
            caller_number=self.record.caller,
            bridge_id=self.bridge_id,
            caller_channel=self.caller_id,
            briefing=lambda: self._briefing(heard),
            publish=self._publish,
            ring_s=self._transfer_ring_s,
        )
        orchestrator = self.orchestrator
        if self.transferred or (self._transfer_task is not None and not self._transfer_task.done()):
            transfer.failed("busy")
            return
        turns = orchestrator.turns if orchestrator is not None else []
        heard = Heard(
            caller=self.record.caller,
            owner=self.ext.owner,
            question=request.question or next((t.text for t in reversed(turns) if t.speaker == "caller"), ""),
            ai_said=next((t.text for t in reversed(turns) if t.speaker == "ai" and t.text), ""),
        )
        if (
            orchestrator is None
            or self.ended.is_set()
            or self.tasks.closed  # the call is being torn down (its time cap, a failure): nothing more starts
            or (self._sounds_dir is None and not transfer.listening)
        ):
            transfer.failed("not_ai_call")
            return
        if not transfer.listening and not orchestrator.transferring(request.operator):
            transfer.failed("busy")
            return
        self.transfer = transfer
        self._transfer_task = self.tasks.spawn(self._run_transfer(transfer, orchestrator), "transfer")

    def take_over(self, request: TransferRequest) -> None:
        """The operator listening in (``request.transfer_id``) takes the caller from the AI."""
        transfer = self.transfer
        if transfer is None or transfer.request.transfer_id != request.transfer_id or not transfer.take_over():
            log.warning("take-over %s of %s: nobody is listening in", request.transfer_id, self.record.call_id)

    async def _run_transfer(self, transfer: PhoneTransfer, orchestrator: Orchestrator) -> None:
        try:
            failure = await transfer.run(self.ended.is_set)
        except (AriError, OSError) as exc:
            log.error("transfer of %s failed: %s", self.record.call_id, exc)
            failure = "error"
        except asyncio.CancelledError:
            await asyncio.shield(transfer.hang_up())
            raise
        if failure:
            await transfer.hang_up()
            if transfer.listening and failure in (LISTEN_ENDED, "caller_hung_up") and transfer.status == "listening":
                transfer.ended()  # they listened, then one side hung up: nothing failed
            else:
                transfer.failed(failure)
            orchestrator.transfer_settled(False)
            return
        self.transferred = True
        self.listener.enabled = False  # the AI is done: nothing said now is a question
        if self._cap is not None:
            self._cap.reschedule(None)  # the AI's time cap is not a cap on a person's call
        if transfer.listening:
            orchestrator.taken_over()
        else:
            orchestrator.transfer_settled(True)
        self.record.answered_by = f"{self.record.answered_by or 'ai'},{transfer.request.operator_ext}"
        self._journal(self.record)
        self._publish(self.record.call_id, CallAnswered(answered_by=self.record.answered_by, ai=True))
        log.info("AI call %s put through to %s", self.record.call_id, transfer.request.operator_ext)

    async def _briefing(self, heard: Heard) -> tuple[Path, float]:
        """The operator's briefing as a WAV in the sounds directory, and its length in seconds."""
        assert self._sounds_dir is not None
        text = briefing(heard, self.ext.language)
        tts = self.engine.voice(self.ext.language)
        said = spoken(text, self.ext.language, (self.ext.owner,))
        assert self.transfer is not None
        name = f"transfer-{self.transfer.request.transfer_id[:16]}"
        path = await write_prompt(self._sounds_dir, name, text, lambda: tts.synthesize_all(said), tts.sample_rate)
        seconds = max(0.0, (path.stat().st_size - 44) / 16000)  # 8 kHz, 16 bit
        log.info("transfer briefing (%.1f s): %s", seconds, text)
        return path, seconds

    # --- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> None:
        logs.bind_call(self.record.call_id)  # this task and all it starts log with the call id
        try:
            await self._setup()
            async with asyncio.timeout(self._max_seconds) as self._cap:
                await self._converse_until_hangup()
        except CallEnded:
            pass
        except TimeoutError:
            log.info("AI call %s reached its time cap", self.record.call_id)
            self.hangup_by = self.hangup_by or "ai"
        except (AriError, MediaError) as exc:
            log.error("AI call %s failed: %s", self.record.call_id, exc)
            self.hangup_by = self.hangup_by or "system"
        finally:
            if self._left:
                log.info("AI call %s: %s", self.record.call_id, self._left)
            await asyncio.shield(self._teardown())
            await asyncio.shield(self._keep_message())

    async def _setup(self) -> None:
        port = await self.media.open(self._media_host)
        started = self._waiter("StasisStart", self.media_channel_id)
        response = await self.ari.external_media(
            self.media_channel_id, f"{self._media_host}:{port}", self._media_format
        )
        variables = (response or {}).get("channelvars") or {}
        try:
            self.media.set_remote(variables["UNICASTRTP_LOCAL_ADDRESS"], int(variables["UNICASTRTP_LOCAL_PORT"]))
        except (KeyError, ValueError) as exc:
            raise MediaError(f"externalMedia gave no RTP address: {variables}") from exc
        await self._until_ended(asyncio.wait_for(started, 5.0))
        await self.ari.create_bridge(self.bridge_id)
        await self.ari.add_to_bridge(self.bridge_id, [self.caller_id, self.media_channel_id])
        if self.ended.is_set():
            raise CallEnded
        await self.ari.answer(self.caller_id)
        self.answered_at = self._now()
        self.record.answer = utcnow_iso()
        self.record.answered_by = "ai"
        self.record.codec = self.codec.name
        self._journal(self.record)
        self._publish(self.record.call_id, CallAnswered(answered_by="ai", ai=True))
        log.info(
            "AI answered %s (%s -> %s, %s)", self.record.call_id, self.record.caller, self.ext.ext, self.codec.name
        )
        if self._rtp_timeout_s:
            self.watchdog = RtpWatchdog(self._rtp_timeout_s, self.answered_at, self._rtp_received())
        self.clock.add(self, self._send, self._process)

    async def _until_ended(self, awaitable: Awaitable):
        """Await something, but give up as soon as the call ends."""
        task = asyncio.ensure_future(awaitable)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if task not in done:
            await cancel_and_wait(task)
            raise CallEnded
        return task.result()

    def _since_answer(self) -> float:
        return self._now() - self.answered_at if self.answered_at else 0.0

    async def _converse_until_hangup(self) -> None:
        if self.engine.echo:
            await self._greet_then_echo()
            return
        stt = self.engine.stt_for(self.ext.language)
        assert stt is not None, "only the echo benchmark runs without speech recognition"
        self.orchestrator = Orchestrator(
            config=ConversationConfig(
                owner=self.ext.owner,
                owner_key=self.ext.ext,
                greeting_text=self.ext.greeting_text,
                business=self.ext.business,
                language=self.ext.language,
                confirm_at=self.engine.confirm_at,
                hold_message=self.ext.hold_message,
                update_message=self.ext.update_message,
                hold_music=hold_music_for(self._hold_music_dir, self.ext.hold_music, self.ext.hold_music_volume),
            ),
            speaker=self.speaker,
            media_rate=self.codec.sample_rate,
            stt=stt,
            relisten_stt=self.engine.relisten_stt(self.ext.language),
            tts=self.engine.voice(self.ext.language, self.ext.voice),
            answerer=self.engine.answerer,
            retriever=self.engine.retriever,
            greeting=lambda: self._greeting_pcm(self.ext, self.codec.sample_rate),
            since_answer=self._since_answer,
            publish=lambda event: self._publish(self.record.call_id, event),
            desk=self.engine.desk,
            hitl=self.engine.hitl,
            voicemail=self,
            turn_model=self.engine.turn_model,
        )
        conversation = self.tasks.spawn(self.orchestrator.run(), "conversation")
        try:
            await self._until_ended(asyncio.shield(conversation))
        finally:
            self.orchestrator.post(Ev.HANGUP)
            # the conversation ends itself on HANGUP; cancelled only if it has not within 3 s (the
            # helper also logs a conversation that failed)
            await asyncio.wait({conversation}, timeout=3.0)
            await cancel_and_wait(conversation, 3.0)
        if self.transferred:  # the operator has the caller: the media (and the recording) go on
            await self.ended.wait()
            raise CallEnded

    async def _greet_then_echo(self) -> None:
        greeting = await self._greeting_pcm(self.ext, self.codec.sample_rate)
        handle = self.speaker.start(self.ext.greeting_text)
        self.speaker.push(handle, greeting)
        self.speaker.finish(handle)
        await self._until_ended(handle.done.wait())
        self.listener.enabled = False
        self._loopback = True
        await self.ended.wait()
        raise CallEnded

    async def _teardown(self) -> None:
        self.clock.remove(self)
        self.speaker.stop()
        self.record.ai_handled = True
        await cancel_and_wait(self._transfer_task, 5.0)
        await self.tasks.close()  # anything of the call still running (the conversation has ended)
        if self.transfer is not None:
            await self.transfer.hang_up()
            if self.transferred or (self.transfer.listening and self.transfer.status in ("ringing", "listening")):
                self.transfer.ended()
        try:
            async with asyncio.timeout(5.0):
                await self.ari.destroy_bridge(self.bridge_id)
                await self.ari.hangup(self.media_channel_id)
                if self.hangup_by is None or self.hangup_by in ("ai", "system", "operator"):
                    self.hangup_by = self.hangup_by or "ai"
                    await self.ari.hangup(self.caller_id)
        except (AriError, TimeoutError) as exc:
            log.warning("teardown of %s incomplete: %s", self.record.call_id, exc)
        finally:
            self.media.close()
            self.record.hangup_by = self.hangup_by
            self.record.recording_dir = str(self.recording.directory)
            self.recording.close()
            self.record.recording_error = self.recording.error

    def report(self) -> dict:
        """Turns and media figures for metadata.json."""
        orchestrator = self.orchestrator
        return {
            "turns": orchestrator.report() if orchestrator else [],
            "extra": {
                "media": asdict(self.media.stats),
                "barge_ins": orchestrator.barge_ins if orchestrator else 0,
                "jitter": asdict(self.media.jitter.stats),
                **({"voicemail": self.voicemail} if self.voicemail else {}),
            },
        }
