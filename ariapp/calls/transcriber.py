"""The live transcript of a phone-to-phone call: each party's voice, written down as they speak.

Theory of operation
    Dial answered (caller channel C, callee channel P), within the live budget:
      for each party X in (caller C, callee P):
        bind our UDP socket -> POST externalMedia (id ``<call>-<x>-media``) -> POST /channels/X/snoop
        ``spy=in`` (id ``<call>-<x>-snoop``: what X says, nothing else) -> wait for both StasisStarts
        -> mixing bridge ``<call>-<x>-bridge`` with the two
      -> register on the media clock: each tick, one frame per party from its jitter buffer into its
         :class:`~aipbx.audio.segmenter.Segmenter`
      -> each finished utterance is recognised on the *transcript lane* (a low-priority recogniser that
         never takes the CPU from a caller waiting for the AI) and published as a final ``transcript``
         event with its speaker and times; a pause publishes interim text when the lane is idle
    Hang-up (either party): flush both segmenters, give pending recognitions a bounded time, tear down
    (bridges, media channels, sockets; snoops die with their channel). 404s are success.

The transcript is *complete* when every utterance was recognised. Anything less (a recogniser error,
a backlog that outlasted the drain time, a set-up failure) says ``complete: false`` and the call is
transcribed again from its recordings after the call (``webconsole.calls.tasks``), so no recorded
call ends without a transcript.

Times are seconds from the answer, like the AI calls' turns and the recordings MixMonitor starts
when the callee answers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aipbx import logs
from aipbx.audio.resample import resample
from aipbx.audio.segmenter import Segment, Segmenter
from aipbx.providers.base import SpeechToText
from aipbx.providers.errors import ProviderError
from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent
from ariapp.calls.media import CallMedia, MediaClock, media_codec
from ariapp.errors import AriError, MediaError
from ariapp.tasks import cancel_and_wait
from contract import Event, Transcript

log = logging.getLogger(__name__)

SETUP_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 20.0  # after the hang-up, pending recognitions get this long before post-call takes over
MAX_PENDING = 12  # utterances waiting per call; beyond that the live transcript gives up (post-call redoes it)


@dataclass
class _Leg:
    speaker: str  # caller | callee
    channel_id: str
    media: CallMedia
    segmenter: Segmenter | None = None

    def ids(self, call_id: str) -> tuple[str, str, str]:
        base = f"{call_id}-{self.speaker}"
        return f"{base}-snoop", f"{base}-media", f"{base}-bridge"


@dataclass
class _Lane:
    """Recognitions in flight on the transcript lane, across every call of the process."""

    inflight: int = 0


LANE = _Lane()


@dataclass
class TranscriptLine:
    speaker: str
    start_s: float
    end_s: float
    text: str
    confidence: float | None = None
    extra: dict = field(default_factory=dict)


class LiveTranscription:
    def __init__(
        self,
        *,
        ari: AriClient,
        clock: MediaClock,
        call_id: str,
        caller_channel_id: str,
        callee_channel_id: str,
        stt: SpeechToText,
        language: str,
        media_host: str,
        media_format: str,
        jitter_ms: int,
        on_waiter: Callable[[str, str], asyncio.Future],
        answered_at: float,
        publish: Callable[[str, Event], None] | None = None,
    ) -> None:
        self.ari = ari
        self.clock = clock
        self.call_id = call_id
        self.stt = stt
        self.lang = "ko" if language.startswith("ko") else "en"
        self.codec = media_codec(media_format)
        self._media_host = media_host
        self._media_format = media_format
        self._waiter = on_waiter
        self._answered_at = answered_at
        self._publish = publish or (lambda call_id, event: None)
        self.legs = [
            _Leg("caller", caller_channel_id, CallMedia(self.codec, jitter_ms)),
            _Leg("callee", callee_channel_id, CallMedia(self.codec, jitter_ms)),
        ]
        self.lines: list[TranscriptLine] = []
        self.offset_s = 0.0  # answer -> first tick
        self.ended = asyncio.Event()
        self.complete = True
        self.failure = ""
        self._jobs: set[asyncio.Task] = set()
        self._interim: asyncio.Task | None = None

    # --- identity, for reconciliation after a reconnect ------------------------------------------
    @property
    def channel_ids(self) -> set[str]:
        return {name for leg in self.legs for name in leg.ids(self.call_id)[:2]}

    @property
    def bridge_ids(self) -> set[str]:
        return {leg.ids(self.call_id)[2] for leg in self.legs}

    # --- events (from the ARI reader; never block) -----------------------------------------------
    def on_event(self, event: AriEvent) -> None:
        channel = event.channel
        if channel is None or event.type not in ("ChannelHangupRequest", "ChannelDestroyed", "StasisEnd"):
            return
        watched = {leg.channel_id for leg in self.legs} | {leg.ids(self.call_id)[0] for leg in self.legs}
        if channel.id in watched:
            self.ended.set()

    # --- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> None:
        logs.bind_call(self.call_id)
        try:
            for leg in self.legs:
                await self._until_ended(self._open(leg))
            self.offset_s = time.monotonic() - self._answered_at
            for leg in self.legs:
                leg.segmenter = Segmenter(
                    leg.speaker,
                    self.codec.sample_rate,
                    self._on_segment,
                    on_pause=functools.partial(self._on_pause, leg.speaker),
                )
            self.clock.add(self, self._tick_send, self._tick)
            await self.ended.wait()
        except _Ended:
            self._give_up("the call ended while the live transcript was being set up")
        except (AriError, MediaError, TimeoutError) as exc:
            self._give_up(f"set-up failed: {exc!r}")
        finally:
            await asyncio.shield(self._finish())

    async def _open(self, leg: _Leg) -> None:
        snoop_id, media_id, bridge_id = leg.ids(self.call_id)
        port = await leg.media.open(self._media_host)
        media_started = self._waiter("StasisStart", media_id)
        snoop_started = self._waiter("StasisStart", snoop_id)
        response = await self.ari.external_media(media_id, f"{self._media_host}:{port}", self._media_format)
        variables = (response or {}).get("channelvars") or {}
        try:
            leg.media.set_remote(variables["UNICASTRTP_LOCAL_ADDRESS"], int(variables["UNICASTRTP_LOCAL_PORT"]))
        except (KeyError, ValueError) as exc:
            raise MediaError(f"externalMedia gave no RTP address: {variables}") from exc
        await self.ari.snoop(leg.channel_id, snoop_id, spy="in")
        await asyncio.wait_for(asyncio.gather(media_started, snoop_started), SETUP_TIMEOUT_S)
        await self.ari.create_bridge(bridge_id)
        await self.ari.add_to_bridge(bridge_id, [snoop_id, media_id])

    async def _until_ended(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if not task.done():
            await cancel_and_wait(task)
            raise _Ended
        task.result()

    async def _finish(self) -> None:
        self.clock.remove(self)
        for leg in self.legs:
            if leg.segmenter is not None:
                leg.segmenter.flush()
        if self._interim is not None:
            self._interim.cancel()
        if self._jobs:
            _, pending = await asyncio.wait(set(self._jobs), timeout=DRAIN_TIMEOUT_S)
            if pending:
                self._give_up(f"{len(pending)} utterance(s) still unrecognised {DRAIN_TIMEOUT_S:.0f} s after the end")
                for job in pending:
                    job.cancel()
        try:
            async with asyncio.timeout(5.0):
                for leg in self.legs:
                    snoop_id, media_id, bridge_id = leg.ids(self.call_id)
                    await self.ari.destroy_bridge(bridge_id)
                    await self.ari.hangup(media_id)
                    await self.ari.hangup(snoop_id)
        except (AriError, TimeoutError) as exc:
            log.warning("teardown of the live transcript of %s incomplete: %s", self.call_id, exc)
        finally:
            for leg in self.legs:
                leg.media.close()

    def _give_up(self, why: str) -> None:
        if self.complete:
            log.warning(
                "live transcript of %s incomplete (%s): it will be transcribed after the call", self.call_id, why
            )
        self.complete, self.failure = False, self.failure or why

    # --- media clock (never blocks) ----------------------------------------------------------------
    def _tick_send(self) -> None:
        """Nothing to send: we only listen. The clock's first phase is for calls that talk."""

    def _tick(self) -> None:
        for leg in self.legs:
            if leg.segmenter is not None:
                leg.segmenter.feed(leg.media.receive_frame())

    # --- recognition -------------------------------------------------------------------------------
    def _on_segment(self, segment: Segment) -> None:
        if not self.complete:
            return
        if len(self._jobs) >= MAX_PENDING:
            self._give_up(f"more than {MAX_PENDING} utterances waiting for the recogniser")
            return
        job = asyncio.ensure_future(self._recognise(segment))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _recognise(self, segment: Segment) -> None:
        LANE.inflight += 1
        try:
            transcript = await self.stt.transcribe(
                resample(segment.pcm, self.codec.sample_rate, self.stt.sample_rate), self.lang
            )
        except ProviderError as exc:
            self._give_up(f"recogniser failed: {exc}")
            return
        finally:
            LANE.inflight -= 1
        text = transcript.text.strip()
        if not text:
            return
        line = TranscriptLine(
            segment.speaker,
            round(segment.start_s + self.offset_s, 2),
            round(segment.end_s + self.offset_s, 2),
            text,
            None if transcript.confidence is None else round(transcript.confidence, 3),
        )
        self.lines.append(line)
        self._publish(
            self.call_id,
            Transcript(
                speaker=line.speaker, text=text, final=True, t=line.start_s, end=line.end_s, confidence=line.confidence
            ),
        )

    def _on_pause(self, speaker: str, start_s: float, pcm: np.ndarray) -> None:
        """Interim text at a pause, only when the lane has nothing better to do."""
        if LANE.inflight or self._jobs or (self._interim is not None and not self._interim.done()):
            return
        self._interim = asyncio.ensure_future(self._interim_text(speaker, start_s, pcm))

    async def _interim_text(self, speaker: str, start_s: float, pcm: np.ndarray) -> None:
        LANE.inflight += 1
        try:
            transcript = await self.stt.transcribe(
                resample(pcm, self.codec.sample_rate, self.stt.sample_rate), self.lang
            )
        except ProviderError:
            return
        finally:
            LANE.inflight -= 1
        if transcript.text.strip():
            self._publish(
                self.call_id,
                Transcript(
                    speaker=speaker, text=transcript.text.strip(), final=False, t=round(start_s + self.offset_s, 2)
                ),
            )

    # --- results -----------------------------------------------------------------------------------
    def report(self) -> dict:
        """Turns (``speaker``, ``t``, ``end``, ``text``, ``confidence``) and how they were made."""
        lines = sorted(self.lines, key=lambda line: (line.start_s, line.speaker))
        turns = [
            {
                "t": line.start_s,
                "end": line.end_s,
                "speaker": line.speaker,
                "text": line.text,
                "confidence": line.confidence,
            }
            for line in lines
        ]
        return {
            "turns": turns,
            "extra": {
                "transcription": {
                    "mode": "live",
                    "complete": self.complete,
                    "failure": self.failure,
                    "media": {leg.speaker: leg.media.stats.rx_packets for leg in self.legs},
                }
            },
        }


class _Ended(Exception):
    """The call ended while the transcript was being set up."""
