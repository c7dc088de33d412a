"""The one module of the ARI app that owns media sockets: External Media RTP for each AI call.

Asterisk's external media channel sends the caller's audio to our UDP socket and plays whatever we
send into the call's bridge. We own the 20 ms clock on this path (:class:`MediaClock`), so nothing is
ever sent ahead of time: barge-in can stop our voice within one frame.

Trap: Asterisk sends RTCP to port+1 of our address, which may be another call's socket. Only packets
from the expected source address with the expected payload type are accepted; the rest are counted
and dropped, as are malformed packets.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from aipbx.audio.g711 import codec_for
from aipbx.audio.rtp import RtpParseError, parse_rtp
from ariapp.media.jitter import JitterBuffer
from ariapp.media.pacer import PacerClock, RtpStreamState

log = logging.getLogger(__name__)
FRAME_MS = 20
SPIN_S = 0.0015  # the last part of each wait is a blocking nanosleep (see MediaClock.run)


@dataclass(frozen=True, slots=True)
class MediaCodec:
    """How audio is carried on the external media leg."""

    name: str
    payload_type: int | None  # None: learn it from the first packet from the expected source
    sample_rate: int
    decode: Callable[[bytes], np.ndarray]
    encode: Callable[[np.ndarray], bytes]

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * FRAME_MS // 1000


def _slin_decode(data: bytes) -> np.ndarray:
    # Asterisk's slin over external media is big-endian on the wire.
    return np.frombuffer(data, dtype=">i2").astype(np.int16)


def _slin_encode(pcm: np.ndarray) -> bytes:
    return pcm.astype(">i2").tobytes()


def media_codec(fmt: str) -> MediaCodec:
    if fmt == "slin16":
        return MediaCodec("slin16", None, 16000, _slin_decode, _slin_encode)
    g711 = codec_for(fmt)
    return MediaCodec(g711.name, g711.payload_type, 8000, g711.decode, g711.encode)


@dataclass
class MediaStats:
    rx_packets: int = 0
    rx_dropped_source: int = 0
    rx_dropped_payload_type: int = 0
    rx_malformed: int = 0
    tx_packets: int = 0


class CallMedia(asyncio.DatagramProtocol):
    """UDP socket + jitter buffer + outbound RTP stream state for one call."""

    def __init__(self, codec: MediaCodec, jitter_ms: int = 40) -> None:
        self.codec = codec
        self.jitter = JitterBuffer(depth_ms=jitter_ms, frame_ms=FRAME_MS, max_depth_ms=max(60, jitter_ms + 20))
        self.stats = MediaStats()
        self.remote: tuple[str, int] | None = None
        self._payload_type = codec.payload_type
        self._transport: asyncio.DatagramTransport | None = None
        self._tx = RtpStreamState(
            ssrc=secrets.randbits(32),
            payload_type=codec.payload_type if codec.payload_type is not None else 118,
            samples_per_frame=codec.frame_samples,
        )
        self._talking = False
        self._silence = codec.encode(np.zeros(codec.frame_samples, dtype=np.int16))
        self.first_rx_at: float | None = None

    async def open(self, host: str) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        self._transport = transport
        return transport.get_extra_info("sockname")[1]

    @property
    def local_port(self) -> int | None:
        return self._transport.get_extra_info("sockname")[1] if self._transport else None

    def set_remote(self, host: str, port: int) -> None:
        self.remote = (host, port)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.remote is None or addr[:2] != self.remote:
            self.stats.rx_dropped_source += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.stats.rx_malformed += 1
            return
        if self._payload_type is None:
            self._payload_type = packet.payload_type
            self._tx = RtpStreamState(self._tx.ssrc, packet.payload_type, self.codec.frame_samples)
        if packet.payload_type != self._payload_type:
            self.stats.rx_dropped_payload_type += 1
            return
        self.stats.rx_packets += 1
        if self.first_rx_at is None:
            self.first_rx_at = time.monotonic()
        self.jitter.push(packet, self.codec.decode(packet.payload))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for our own sends after Asterisk tore the channel down: harmless.
        log.debug("media socket error: %r", exc)

    def receive_frame(self) -> np.ndarray | None:
        """The caller's next 20 ms frame from the jitter buffer (None while buffering or silent)."""
        pcm, _status = self.jitter.pop()
        return pcm

    def send_frame(self, pcm: np.ndarray | None) -> None:
        """Send one 20 ms frame now; ``None`` sends silence.

        The stream never pauses, like a real phone's: phones and NATs that watch for RTP timeouts
        stay happy, and the caller hears true silence rather than nothing between our sentences.
        """
        if self._transport is None or self.remote is None:
            self._tx.skip(1)
            return
        talking = pcm is not None
        payload = self.codec.encode(pcm) if pcm is not None else self._silence
        packet = self._tx.next_packet(payload, marker=talking and not self._talking)
        self._talking = talking
        self._transport.sendto(packet.to_bytes(), self.remote)
        self.stats.tx_packets += 1

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


Tick = Callable[[], None]


class MediaClock:
    """One 20 ms clock for every call of the process.

    A single task wakes every 20 ms on absolute monotonic deadlines (no drift). Each tick has two
    phases: first every call sends its one frame (cheap and uniform, so each call's packets leave at
    the same offset every tick), then every call does its slower per-frame work (recording, VAD).
    Ticks must be quick and never await: heavy work (speech recognition, synthesis) runs in the
    call's own tasks and hands audio over through queues.

    Args:
        frame_ms: Tick period in milliseconds.
        monotonic: Monotonic clock in seconds.
        sleep: The event loop's sleep, for all but the last :data:`SPIN_S` of each wait.
        precise_sleep: A blocking sleep for that last stretch.

    The three clocks are arguments so tests can run the real loop on virtual time.
    """

    def __init__(
        self,
        frame_ms: int = FRAME_MS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        precise_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ticks: dict[object, tuple[Tick, Tick | None, contextvars.Context]] = {}
        self._frame_ms = frame_ms
        self._monotonic = monotonic
        self._sleep = sleep
        self._precise_sleep = precise_sleep
        self.late_ticks = 0
        self.tick_times: deque[float] = deque(maxlen=3000)  # last minute of tick start times
        self.tick_work: deque[float] = deque(maxlen=3000)  # seconds each tick took

    def add(self, key: object, send: Tick, process: Tick | None = None) -> None:
        # Ticks run in the caller's context (its call_id for logs, and for tasks a tick starts).
        self._ticks[key] = (send, process, contextvars.copy_context())

    def remove(self, key: object) -> None:
        self._ticks.pop(key, None)

    def __len__(self) -> int:
        return len(self._ticks)

    async def run(self) -> None:
        pacer = PacerClock(frame_ms=self._frame_ms, max_catchup_frames=2)
        pacer.start(self._monotonic())
        while True:
            deadline = pacer.next_deadline()
            delay = deadline - self._monotonic()
            if delay > SPIN_S:
                await self._sleep(delay - SPIN_S)
            # The loop's timers have millisecond resolution; the last stretch is a precise
            # nanosleep so every tick starts within ~0.1 ms of its deadline.
            remaining = deadline - self._monotonic()
            if remaining > 0:
                self._precise_sleep(remaining)  # blocks the loop, but for at most SPIN_S, on purpose
            elif remaining < -0.005:
                self.late_ticks += 1
            started = self._monotonic()
            self.tick_times.append(started)
            registered = list(self._ticks.items())
            for phase in (0, 1):
                for key, (send, process, context) in registered:
                    tick = send if phase == 0 else process
                    if tick is None or key not in self._ticks:
                        continue
                    try:
                        context.run(tick)
                    except Exception:  # one broken call must not stop every other call's audio
                        log.exception("media tick failed; dropping the call from the clock")
                        self._ticks.pop(key, None)
            now = self._monotonic()
            self.tick_work.append(now - started)
            pacer.on_sent(now)

    def interval_percentiles(self, last_seconds: float = 10.0) -> dict[str, float]:
        """p50/p99/max of the tick-to-tick intervals of the last ``last_seconds``, in ms."""
        times = list(self.tick_times)[-int(last_seconds * 1000 / self._frame_ms) :]
        if len(times) < 3:
            return {}
        gaps = np.diff(np.array(times)) * 1000.0
        work = np.array(list(self.tick_work)[-len(times) :]) * 1000.0
        return {
            "p50": round(float(np.percentile(gaps, 50)), 2),
            "p99": round(float(np.percentile(gaps, 99)), 2),
            "max": round(float(gaps.max()), 2),
            "work_p50": round(float(np.percentile(work, 50)), 3),
            "work_p99": round(float(np.percentile(work, 99)), 3),
        }
