"""Incremental three-track call recording to WAV.

The media loop calls :meth:`CallRecorder.write` once per 20 ms tick with the
caller's frame and the assistant's frame (either may be ``None`` for silence).
Each tick appends exactly one frame to every track, so ``caller.wav``,
``callee.wav`` and ``mixed.wav`` always have the same length and stay sample
aligned however sparse either side is.

At most one second is held in memory: frames are appended to the files once a
second (one ``writeframes`` per track, which also patches the RIFF sizes), so a
process that dies mid-call leaves playable files missing at most that second.
Writing every 20 ms instead costs ~40 us per call per tick, which is a fifth
of the media clock's budget at 100 calls. Recordings are personal data: the directory is created ``0o700``, the
files ``0o600``, and an existing recording is never overwritten.

A write the disk refuses (full, failing) stops the recording, never the call: :meth:`CallRecorder.write`
keeps returning, :attr:`CallRecorder.error` says why, and the files are cut back to what every
track holds whole, with headers that say exactly that (:func:`repair_wav`) — a reader never meets
a header claiming more audio than the file has, nor tracks of different lengths.
"""

from __future__ import annotations

import contextlib
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

__all__ = ["CallRecorder", "RecordingInfo", "repair_wav"]

Pcm = npt.NDArray[np.int16]

FRAME_MS = 20
FLUSH_FRAMES = 50  # one second
WAV_HEADER_BYTES = 44  # RIFF + fmt (PCM, 16 bytes) + data chunk header, as ``wave`` writes it
CALLER_FILE = "caller.wav"
CALLEE_FILE = "callee.wav"
MIXED_FILE = "mixed.wav"


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What a finished recording contains.

    Attributes:
        caller: Inbound track (what the caller said).
        callee: Outbound track (what the assistant said).
        mixed: Both tracks summed.
        duration_seconds: Length of each track.
        frames: Number of 20 ms ticks written.
        sample_rate: Samples per second of every track.
    """

    caller: Path
    callee: Path
    mixed: Path
    duration_seconds: float
    frames: int
    sample_rate: int

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        """The three files: caller, callee, mixed."""
        return (self.caller, self.callee, self.mixed)


class CallRecorder:
    """Writes caller, callee and mixed tracks of one call.

    Args:
        directory: Where to put the three files; created with mode 0o700 if missing.
        sample_rate: Sample rate of the frames passed to :meth:`write`.

    Raises:
        FileExistsError: The directory already holds a recording.
        ValueError: The sample rate does not give a whole number of samples per 20 ms.
    """

    def __init__(self, directory: Path, sample_rate: int = 8000) -> None:
        if sample_rate <= 0 or sample_rate * FRAME_MS % 1000:
            raise ValueError(f"sample_rate {sample_rate} does not give whole 20 ms frames")
        self.directory = Path(directory)
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.frames = 0
        self.error: OSError | None = None  # the write the disk refused; nothing is recorded after it
        self._pending_caller: list[Pcm] = []
        self._pending_callee: list[Pcm] = []
        self._info: RecordingInfo | None = None
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)

        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
            os.chmod(self.directory, 0o700)  # mkdir's mode is filtered by the umask; be exact
        self._paths = tuple(self.directory / name for name in (CALLER_FILE, CALLEE_FILE, MIXED_FILE))
        self._files: list[BinaryIO] = []
        self._writers: list[wave.Wave_write] = []
        try:
            for path in self._paths:
                stream = self._create(path)
                self._files.append(stream)
                writer = wave.open(stream, "wb")
                writer.setnchannels(1)
                writer.setsampwidth(2)
                writer.setframerate(sample_rate)
                self._writers.append(writer)
        except BaseException:
            self._close_files()
            raise

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._info is not None

    @property
    def duration_seconds(self) -> float:
        """Audio written so far, per track."""
        return self.frames * self.frame_samples / self.sample_rate

    def write(self, inbound: Pcm | None, outbound: Pcm | None) -> None:
        """Append one tick to every track.

        Args:
            inbound: The caller's frame, or ``None`` for silence.
            outbound: The assistant's frame, or ``None`` for silence.

        Raises:
            RuntimeError: The recorder is closed.
            ValueError: A frame is not ``frame_samples`` int16 samples.
        """
        if self.closed:
            raise RuntimeError("recorder is closed")
        caller = self._frame(inbound, "inbound")
        callee = self._frame(outbound, "outbound")
        if self.error is not None:
            return  # the disk failed: the call goes on unrecorded
        self._pending_caller.append(caller)
        self._pending_callee.append(callee)
        self.frames += 1
        if len(self._pending_caller) >= FLUSH_FRAMES:
            try:
                self._flush()
            except OSError as exc:
                self._stop(exc)

    def _stop(self, exc: OSError) -> None:
        """The disk refused a write: keep what every track holds whole, and record nothing more."""
        self.error = exc
        self._pending_caller.clear()
        self._pending_callee.clear()
        for stream in self._files:  # closes the descriptor even when flushing the buffer fails again
            with contextlib.suppress(OSError):
                stream.close()
        for writer in self._writers:  # its file is closed: this only detaches it (no write on __del__)
            with contextlib.suppress(OSError, ValueError):
                writer.close()
        self._files.clear()
        self._writers.clear()
        try:
            kept = repair_wav(self._paths, sample_width=2)
        except OSError:  # the disk refuses even that: the error already says the recording is incomplete
            kept = 0
        self.frames = kept // (2 * self.frame_samples)

    def _flush(self) -> None:
        if not self._pending_caller:
            return
        caller = np.concatenate(self._pending_caller)
        callee = np.concatenate(self._pending_callee)
        self._pending_caller.clear()
        self._pending_callee.clear()
        mixed = np.clip(caller.astype(np.int32) + callee, -32768, 32767).astype(np.int16)
        for writer, samples in zip(self._writers, (caller, callee, mixed), strict=True):
            # WAV is little-endian whatever the host is.
            writer.writeframes(samples.astype("<i2", copy=False).tobytes())

    def close(self) -> RecordingInfo:
        """Finish the files and describe them. Safe to call more than once.

        Returns:
            The same :class:`RecordingInfo` on every call.
        """
        if self._info is None:
            if self.error is None:
                try:
                    self._flush()
                    self._close_files()
                except OSError as exc:
                    self._stop(exc)
            caller, callee, mixed = self._paths
            self._info = RecordingInfo(
                caller=caller,
                callee=callee,
                mixed=mixed,
                duration_seconds=self.duration_seconds,
                frames=self.frames,
                sample_rate=self.sample_rate,
            )
        return self._info

    def _frame(self, frame: Pcm | None, side: str) -> Pcm:
        if frame is None:
            return self._silence
        samples = np.asarray(frame)
        if samples.dtype != np.dtype(np.int16) or samples.shape != (self.frame_samples,):
            raise ValueError(
                f"{side} frame must be {self.frame_samples} int16 samples, "
                f"got {samples.dtype} with shape {samples.shape}"
            )
        return samples

    @staticmethod
    def _create(path: Path) -> BinaryIO:
        # O_EXCL: never clobber an earlier recording; O_NOFOLLOW: never write through a planted symlink.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # as above: exact mode whatever the umask
        return os.fdopen(fd, "wb")

    def _close_files(self) -> None:
        # wave.Wave_write.close() patches the header but leaves a caller-supplied file open.
        errors: list[BaseException] = []
        for writer in self._writers:
            try:
                writer.close()
            except Exception as exc:  # keep closing the other tracks
                errors.append(exc)
        for stream in self._files:
            stream.close()
        self._writers.clear()
        self._files.clear()
        if errors:
            raise errors[0]


def repair_wav(paths: tuple[Path, ...], sample_width: int = 2) -> int:
    """Cut mono PCM WAV files, as ``wave`` writes them, to the whole samples all of them hold, and make
    each header say so; returns the data bytes kept per file.

    For files a failed write left behind: their data may run past what the header says (the write
    went partly through) or stop short of it (the header was patched, the data was not). A file
    too short to hold its header holds no audio and is removed. Only shrinks files: works on a full
    disk.
    """
    sizes = {}
    for path in paths:
        try:
            sizes[path] = path.stat().st_size
        except FileNotFoundError:
            continue
    kept = max(0, min(sizes.values(), default=WAV_HEADER_BYTES) - WAV_HEADER_BYTES)
    kept -= kept % sample_width
    for path, size in sizes.items():
        if size < WAV_HEADER_BYTES:
            path.unlink()
            continue
        with open(path, "r+b") as handle:
            handle.truncate(WAV_HEADER_BYTES + kept)
            handle.seek(4)
            handle.write(struct.pack("<I", WAV_HEADER_BYTES - 8 + kept))  # RIFF chunk size
            handle.seek(WAV_HEADER_BYTES - 4)
            handle.write(struct.pack("<I", kept))  # data chunk size
    return kept
