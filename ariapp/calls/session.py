"""One AI-answered call: set up External Media, talk, tear everything down on every path.

Theory of operation
    StasisStart(caller, args=[missed, ext, dialstatus])
      -> bind our UDP socket -> POST externalMedia with our own channel id
      -> wait for that channel's StasisStart (bridging earlier fails with 422 about half the time)
      -> mixing bridge with both channels -> answer the caller LAST (no audio lost)
      -> register on the media clock -> greeting -> listen / reply ... until the caller hangs up
    Teardown (shielded, time-bounded, whatever happened): leave the clock, destroy the bridge, hang up
    the media channel (404 = already gone = fine), close the socket, close the recording, report.

The session owns its tasks (one TaskGroup); events reach it through its queue, so the ARI reader
never waits on a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.audio import Listener, Speaker, SpeechHandle
from ariapp.calls.media import CallMedia, MediaClock, media_codec
from ariapp.calls.recording import CallRecording
from ariapp.cdr import CallRecord, utcnow_iso
from ariapp.directory import Extension
from ariapp.errors import AriError, MediaError

log = logging.getLogger(__name__)


class CallEnded(Exception):
    """The caller hung up (or the call was torn down) while we were doing something."""


@dataclass
class TurnLog:
    t: float  # seconds since answer
    speaker: str  # caller | ai
    text: str
    interrupted: bool = False
    latency: dict[str, float] = field(default_factory=dict)


class Brain:
    """What the AI says. Issue #3 replaces this with the conversation engine (RAG + LLM).

    ``echo=True`` (benchmarks only, ``AIPBX_BENCH_ECHO=1``): after the greeting the caller's audio
    goes back to the caller through the jitter buffer, VAD and recording — the whole media plane
    without speech models.
    """

    def __init__(self, stt, tts, language: str = "en", echo: bool = False) -> None:
        self.stt = stt
        self.tts = tts
        self.language = language
        self.echo = echo

    def reply_to(self, text: str, ext: Extension) -> str:
        if not text:
            return "Sorry, I did not catch that. Could you say it again?"
        return f"Thank you. I noted: {text} I will pass this on to {ext.owner}."


class AiCall:
    def __init__(self, *, ari: AriClient, clock: MediaClock, brain: Brain, record: CallRecord,
                 caller_channel_id: str, ext: Extension, media_host: str, media_format: str,
                 jitter_ms: int, recordings_dir: Path, greeting_pcm: Callable[[Extension, int], Awaitable[np.ndarray]],
                 on_waiter: Callable[[str, str], asyncio.Future], max_seconds: int,
                 journal: Callable[[CallRecord], None]) -> None:
        self.ari = ari
        self.clock = clock
        self.brain = brain
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
        self._waiter = on_waiter
        self._max_seconds = max_seconds
        self._journal = journal
        self._echo = False
        self._frames: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self.speaker = Speaker(self.codec.frame_samples, time.monotonic)
        self.listener = Listener(self.codec.sample_rate, self._on_caller_started, self._on_utterance)
        self.utterances: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self.ended = asyncio.Event()
        self.hangup_by: str | None = None
        self.answered_at: float | None = None
        self.turns: list[TurnLog] = []
        self.barge_ins = 0

    # --- events from the ARI reader (must not block) -------------------------------------------
    def on_event(self, event: AriEvent) -> None:
        channel = event.channel
        if channel is None:
            return
        if event.type in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest") and channel.id in (
            self.caller_id, self.media_channel_id
        ):
            if self.hangup_by is None:
                self.hangup_by = "caller" if channel.id == self.caller_id else "system"
            self.ended.set()

    # --- media clock tick (must not block) -------------------------------------------------------
    def _send(self) -> None:
        """Phase 1 of a tick: exactly one frame out, as close to the deadline as possible."""
        inbound = self.media.receive_frame()
        outbound = self.speaker.next_frame()
        if outbound is None and self._echo:
            outbound = inbound
        self.media.send_frame(outbound)
        self._frames = (inbound, outbound)

    def _process(self) -> None:
        """Phase 2 of a tick, after every call has sent: recording and VAD."""
        inbound, outbound = self._frames
        self.recording.write(inbound, outbound)
        self.listener.feed(inbound)

    def _on_caller_started(self) -> None:
        if self.speaker.speaking:
            for handle in self.speaker.stop():
                self.barge_ins += 1
                log.info("barge-in: stopped after %.2f s of %r", handle.seconds_played, handle.text[:40])

    def _on_utterance(self, pcm: np.ndarray) -> None:
        self.utterances.put_nowait(pcm)

    # --- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._setup()
            async with asyncio.timeout(self._max_seconds):
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
            await asyncio.shield(self._teardown())

    async def _setup(self) -> None:
        port = await self.media.open(self._media_host)
        started = self._waiter("StasisStart", self.media_channel_id)
        response = await self.ari.external_media(self.media_channel_id, f"{self._media_host}:{port}",
                                                 self._media_format)
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
        self.answered_at = time.monotonic()
        self.record.answer = utcnow_iso()
        self.record.answered_by = "ai"
        self.record.codec = self.codec.name
        self._journal(self.record)
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
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise CallEnded
        return task.result()

    def _since_answer(self) -> float:
        return time.monotonic() - self.answered_at if self.answered_at else 0.0

    async def say(self, text: str, pcm: np.ndarray | None = None) -> SpeechHandle:
        """Speak text (streaming synthesis unless ``pcm`` is given) and wait until played or cut."""
        turn = TurnLog(self._since_answer(), "ai", text)
        self.turns.append(turn)
        handle = self.speaker.start(text)
        if pcm is not None:
            self.speaker.push(handle, pcm)
        else:
            from ariapp.media.resample import StreamResampler

            resampler = StreamResampler(self.brain.tts.sample_rate, self.codec.sample_rate)
            async for chunk in self.brain.tts.synthesize(text):
                if handle.done.is_set():
                    break
                self.speaker.push(handle, resampler.process(chunk))
            self.speaker.push(handle, resampler.flush())
        self.speaker.finish(handle)
        await self._until_ended(handle.done.wait())
        turn.interrupted = handle.interrupted
        return handle

    async def _converse_until_hangup(self) -> None:
        greeting = await self._greeting_pcm(self.ext, self.codec.sample_rate)
        await self.say(self.ext.greeting_text, greeting)
        if self.brain.echo:
            self.listener.enabled = False
            self._echo = True
            await self.ended.wait()
            raise CallEnded
        while True:
            utterance = await self._until_ended(self.utterances.get())
            heard_at = self._since_answer()
            from ariapp.media.resample import resample

            pcm16 = resample(utterance, self.codec.sample_rate, self.brain.stt.sample_rate)
            started = time.monotonic()
            transcript = await self._until_ended(self.brain.stt.transcribe(pcm16, self.brain.language))
            stt_s = time.monotonic() - started
            text = transcript.text.strip()
            self.turns.append(TurnLog(heard_at, "caller", text, latency={"stt_s": round(stt_s, 3)}))
            log.info("caller said %r (stt %.2f s)", text, stt_s)
            await self.say(self.brain.reply_to(text, self.ext))

    async def _teardown(self) -> None:
        self.clock.remove(self)
        self.speaker.stop()
        self.record.ai_handled = True
        try:
            async with asyncio.timeout(5.0):
                await self.ari.destroy_bridge(self.bridge_id)
                await self.ari.hangup(self.media_channel_id)
                if self.hangup_by is None or self.hangup_by in ("ai", "system"):
                    self.hangup_by = self.hangup_by or "ai"
                    await self.ari.hangup(self.caller_id)
        except (AriError, TimeoutError) as exc:
            log.warning("teardown of %s incomplete: %s", self.record.call_id, exc)
        finally:
            self.media.close()
            self.record.hangup_by = self.hangup_by
            self.record.recording_dir = str(self.recording.directory)
            self.recording.close()

    def report(self) -> dict:
        """Turns and media figures for metadata.json."""
        return {
            "turns": [asdict(t) for t in self.turns],
            "extra": {"media": asdict(self.media.stats), "barge_ins": self.barge_ins,
                      "jitter": asdict(self.media.jitter.stats)},
        }
