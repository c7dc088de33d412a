"""RTP media for one call: a UDP socket, a 20 ms paced sender and a recorder.

The sender behaves like a desk phone: once started it sends one G.711 packet every 20 ms
(silence when nothing is queued), paced by absolute deadlines on ``time.monotonic`` so
there is no drift. If the event loop stalls for more than three frames the sender skips
the missed frames (advancing the RTP timestamp) instead of bursting to catch up.

Everything received is recorded as ``(arrival_monotonic, sequence, timestamp, payload_type,
payload)``; packets of other payload types (RTCP, comfort noise, ...) and malformed
datagrams are counted and dropped. Arrival times come from the kernel (``SO_TIMESTAMPNS``)
where available, so a busy event loop (many calls in one process) does not bias them.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import sys
import time
from collections import deque

import numpy as np

from aipbx.audio.g711 import G711Codec, codec_for
from aipbx.audio.rtp import RtpPacket, RtpParseError, parse_rtp
from softphone._tasks import TaskSet
from softphone.audio import (
    FRAME,
    RATE,
    EchoLine,
    Pcm,
    PlayoutQueue,
    TimedFrame,
    dtmf_payload,
    mix,
    parse_dtmf_payload,
    place_on_timeline,
    resample,
)

FRAME_SECONDS = 0.020
MAX_LATE_FRAMES = 3
AUDIO_PTS = {0: "PCMU", 8: "PCMA"}
RxPacket = tuple[float, int, int, int, bytes]
# Linux SO_TIMESTAMPNS (not exported by the socket module): kernel receive time, CLOCK_REALTIME.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)


class RtpStream:
    """One RTP session (socket, sender, recorder)."""

    def __init__(self, local_ip: str, port_range: tuple[int, int] = (40000, 49999)) -> None:
        self.local_ip = local_ip
        self.port_range = port_range
        self.port = 0
        self.remote: tuple[str, int] | None = None
        self.codec: G711Codec = codec_for("PCMU")
        self.telephone_event_pt: int | None = 101
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks = TaskSet("rtp")
        self._sender: asyncio.Task[None] | None = None
        self.sending = True  # False: a phone gone mute on the network (crashed, NAT closed): nothing leaves
        self._playout = PlayoutQueue()
        self._echo: EchoLine | None = None
        self._dtmf: deque[tuple[str, bool, int]] = deque()
        self._dtmf_queued = 0
        self._dtmf_sent = 0
        self._waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self._rx_dtmf_ts: int | None = None
        self._dtmf_event_ts = 0
        self.rx_packets: list[RxPacket] = []
        self.rx_other = 0
        self.rx_malformed = 0
        self.received_dtmf: list[tuple[float, str]] = []
        # what we sent, as (send_monotonic, timestamp, payload_type, payload): G.711 bytes are
        # both the most compact and the most faithful record of it
        self.tx_log: list[tuple[float, int, int, bytes]] = []
        self.tx_packets = 0
        self.tx_skipped_frames = 0
        self.tx_errors = 0

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> int:
        """Bind a random even port in ``port_range``; return it."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.local_ip else socket.AF_INET
        lo, hi = self.port_range
        last: OSError | None = None
        for _ in range(100):
            port = random.randrange(lo + lo % 2, hi, 2)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.local_ip, port))
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setblocking(False)
            if SO_TIMESTAMPNS is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                except OSError:
                    pass  # fall back to the time the loop reads the datagram
            loop.add_reader(sock.fileno(), self._readable)
            self._loop = loop
            self._sock = sock
            self.port = port
            return port
        raise OSError(f"no free RTP port in {self.port_range}") from last

    def configure(self, remote: tuple[str, int] | None, codec: str, telephone_event_pt: int | None) -> None:
        """Set where to send and with which codec (after SDP negotiation)."""
        self.remote = remote if remote and remote[1] and remote[0] not in ("0.0.0.0", "::") else None
        self.codec = codec_for(codec)
        self.telephone_event_pt = telephone_event_pt

    def start(self) -> None:
        """Start the paced sender (idempotent)."""
        if self._sender is None and self._sock is not None:
            self._sender = self._tasks.spawn(self._send_loop(), "sender")

    def stop_sending(self) -> None:
        """Stop the sender only (a test's dead phone); receiving goes on."""
        if self._sender is not None:
            self._sender.cancel()

    def stop(self) -> None:
        """Stop sending and receiving now (the sender task finishes on its own)."""
        if self._sender is not None:
            self._sender.cancel()
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def close(self) -> None:
        """:meth:`stop` and wait for the sender task to finish."""
        self.stop()
        await self._tasks.aclose()

    # --- playout -------------------------------------------------------------------
    def play(self, pcm: np.ndarray, sample_rate: int = RATE) -> int:
        """Queue audio; return the playout position at which it will have been sent."""
        return self._playout.push(resample(pcm, sample_rate, RATE))

    def stop_playback(self) -> None:
        self._playout.clear()
        self._resolve_waiters()

    @property
    def playing(self) -> bool:
        return self._playout.pending > 0

    async def wait_played(self, target: int | None = None) -> None:
        """Wait until the playout position reaches ``target`` (default: all queued so far)."""
        await self._wait("play", self._playout.queued_total if target is None else target)

    def set_echo(self, delay_ms: float | None, gain_db: float = -12.0) -> None:
        """Echo received audio back after ``delay_ms`` at ``gain_db``; None turns echo off."""
        if delay_ms is None:
            self._echo = None
        else:
            self._echo = EchoLine(int(delay_ms * RATE / 1000), 10 ** (gain_db / 20))

    def queue_dtmf(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> int:
        """Queue RFC 4733 events; return the DTMF position at which they are all sent."""
        if self.telephone_event_pt is None:
            raise RuntimeError("the remote side did not negotiate telephone-event")
        frames = max(1, duration_ms // 20)
        for digit in digits:
            dtmf_payload(digit, False, 0)  # validates the digit
            for i in range(frames):
                self._dtmf.append((digit, False, (i + 1) * FRAME))
            self._dtmf.extend([(digit, True, frames * FRAME)] * 3)  # end is sent 3 times
            self._dtmf.extend([("", False, 0)] * max(1, gap_ms // 20))  # audio between digits
        self._dtmf_queued = self._dtmf_sent + len(self._dtmf)
        return self._dtmf_queued

    async def wait_dtmf_sent(self) -> None:
        await self._wait("dtmf", self._dtmf_queued)

    async def _wait(self, kind: str, target: int) -> None:
        current = self._playout.played_total if kind == "play" else self._dtmf_sent
        if current >= target or self._sock is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, target, fut))
        await fut

    def _resolve_waiters(self) -> None:
        keep = []
        for kind, target, fut in self._waiters:
            current = self._playout.played_total if kind == "play" else self._dtmf_sent
            if current >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((kind, target, fut))
        self._waiters = keep

    # --- sending -------------------------------------------------------------------
    async def _send_loop(self) -> None:
        deadline = time.monotonic()
        first = True
        while True:
            late = time.monotonic() - deadline
            if late > MAX_LATE_FRAMES * FRAME_SECONDS:
                skipped = int(late / FRAME_SECONDS)
                deadline += skipped * FRAME_SECONDS
                self._ts = (self._ts + skipped * FRAME) & 0xFFFFFFFF
                self.tx_skipped_frames += skipped
            self._send_frame(marker=first)
            first = False
            deadline += FRAME_SECONDS
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    def _send_frame(self, marker: bool) -> None:
        if self._sock is None or self.remote is None or not self.sending:
            self._ts = (self._ts + FRAME) & 0xFFFFFFFF  # keep the media clock running on hold
            return
        echo = self._echo.pull(FRAME) if self._echo is not None else None
        if self._dtmf and self._dtmf[0][0] and self.telephone_event_pt is not None:
            digit, end, duration = self._dtmf.popleft()
            if duration == FRAME and not end:
                self._dtmf_event_ts = self._ts
            pkt = RtpPacket(
                self.telephone_event_pt,
                self._seq,
                self._dtmf_event_ts,
                self.ssrc,
                dtmf_payload(digit, end, duration),
                marker=duration == FRAME and not end,
            )
            self._dtmf_sent += 1
        else:
            if self._dtmf:
                self._dtmf.popleft()  # inter-digit gap: a normal audio frame
                self._dtmf_sent += 1
            frame = self._playout.take(FRAME)
            if frame is None:
                frame = np.zeros(FRAME, dtype=np.int16)
            if echo is not None and self._echo is not None:
                frame = mix(frame, echo, self._echo.gain)
            payload = self.codec.encode(frame)
            pkt = RtpPacket(self.codec.payload_type, self._seq, self._ts, self.ssrc, payload, marker=marker)
            self.tx_log.append((time.monotonic(), self._ts, self.codec.payload_type, payload))
        try:
            self._sock.sendto(pkt.to_bytes(), self.remote)
            self.tx_packets += 1
        except OSError:
            self.tx_errors += 1  # buffer full, or ICMP unreachable reported on this socket
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        if self._waiters:
            self._resolve_waiters()

    # --- receiving -----------------------------------------------------------------
    def _readable(self) -> None:
        sock = self._sock
        for _ in range(64):  # bounded batch: never starve the sender tasks
            if sock is None:
                return
            try:
                data, ancillary, _, _ = sock.recvmsg(4096, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.tx_errors += 1  # ICMP port unreachable from an earlier send
                continue
            now = time.monotonic()
            arrival = now
            for level, kind, cdata in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack_from("qq", cdata)
                    # the kernel stamps with the wall clock: its age moves the monotonic arrival back,
                    # unless the wall clock was stepped (NTP, a test's moved clock) and it means nothing
                    age = time.time() - (sec + nsec * 1e-9)
                    if 0.0 <= age < 1.0:
                        arrival = now - age
            self._on_datagram(data, arrival)

    def _on_datagram(self, data: bytes, now: float) -> None:
        try:
            pkt = parse_rtp(data)
        except RtpParseError:
            self.rx_malformed += 1
            return
        if pkt.payload_type in AUDIO_PTS:
            self.rx_packets.append((now, pkt.sequence, pkt.timestamp, pkt.payload_type, pkt.payload))
            if self._echo is not None:
                self._echo.push(self._decode(pkt.payload_type, pkt.payload))
        elif pkt.payload_type == self.telephone_event_pt and self.telephone_event_pt is not None:
            event = parse_dtmf_payload(pkt.payload)
            if event is not None and event[1] and pkt.timestamp != self._rx_dtmf_ts:
                self._rx_dtmf_ts = pkt.timestamp  # the end packet is repeated: count it once
                self.received_dtmf.append((now, event[0]))
        else:
            self.rx_other += 1

    @staticmethod
    def _decode(payload_type: int, payload: bytes) -> Pcm:
        return codec_for(AUDIO_PTS[payload_type]).decode(payload)

    # --- recordings ----------------------------------------------------------------
    def received_audio(
        self, origin: float, sample_rate: int = RATE, until: float | None = None, before: float | None = None
    ) -> Pcm:
        """Decoded received audio on a timeline starting at ``origin`` (monotonic).

        With ``until`` the track is zero-padded up to that instant, so a far end that stopped
        sending shows up as trailing silence; with ``before`` only packets that arrived earlier count.
        """
        frames = [
            TimedFrame(t, ts, 0, self._decode(pt, payload))
            for t, _, ts, pt, payload in self.rx_packets
            if before is None or t < before
        ]
        track = place_on_timeline(frames, origin)
        if until is not None:
            wanted = int((until - origin) * RATE)
            if wanted > track.size:
                track = np.concatenate([track, np.zeros(wanted - track.size, dtype=np.int16)])
        return resample(track, RATE, sample_rate)

    def sent_audio(self, origin: float, sample_rate: int = RATE) -> Pcm:
        """What we sent, on a timeline starting at ``origin`` (monotonic)."""
        frames = [TimedFrame(t, ts, 0, self._decode(pt, payload)) for t, ts, pt, payload in self.tx_log]
        return resample(place_on_timeline(frames, origin), RATE, sample_rate)
