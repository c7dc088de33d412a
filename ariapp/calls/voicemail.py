"""The caller's voicemail: what they say after the tone, until they hang up, stop talking, or run out of time.

Theory of operation
    The orchestrator, when nobody answered a help request (away, or the hold timed out), says so,
    asks for a message and plays a tone; then the call session starts a :class:`MessageRecorder` and
    feeds it one caller frame per media tick with the VAD's verdict. The recorder says when the
    message is over: ``max_length``, or ``silence`` (``silence_s`` of quiet after the caller's
    words, twice that if they say nothing at all). A hang-up ends it from outside (``hangup``).
    The session then writes ``voicemail.wav`` into the call's recordings folder — sealed at rest
    with the call's other files when the call is finished (``aipbx.sealing``) — recognises it, and
    reports it with the call (``voicemail`` in ``metadata.json``); the app publishes
    ``voicemail.recorded`` once the folder is sealed. A message in which the caller never spoke is
    not kept: the help request stays an unresolved item.

Pure: no I/O but :func:`write_message` and no asyncio.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

FILE = "voicemail.wav"
MAX_LENGTH, SILENCE, HANGUP = "max_length", "silence", "hangup"


class MessageRecorder:
    """One message, fed frame by frame; :meth:`feed` returns why it is over, once."""

    def __init__(self, rate: int, frame_samples: int, *, max_s: float, silence_s: float) -> None:
        self.rate = rate
        self._frame = frame_samples
        self._max_frames = max(1, int(max_s * rate / frame_samples))
        self._quiet_limit = max(1, int(silence_s * rate / frame_samples))
        self._frames: list[np.ndarray] = []
        self._quiet = 0
        self.heard_speech = False
        self.ended: str | None = None

    def feed(self, frame: np.ndarray | None, speaking: bool) -> str | None:
        """One tick of the caller's audio (None: nothing arrived, kept as silence) and whether the VAD hears speech.

        Returns ``max_length`` or ``silence`` on the frame that ends the message, else None; frames
        after the end are ignored.
        """
        if self.ended is not None:
            return None
        self._frames.append(np.zeros(self._frame, np.int16) if frame is None else frame)
        if speaking:
            self.heard_speech = True
            self._quiet = 0
        else:
            self._quiet += 1
        if len(self._frames) >= self._max_frames:
            self.ended = MAX_LENGTH
        elif self._quiet >= (self._quiet_limit if self.heard_speech else 2 * self._quiet_limit):
            self.ended = SILENCE
        return self.ended

    def hang_up(self) -> str:
        """The caller hung up (or the call ended): the message is what was recorded so far."""
        if self.ended is None:
            self.ended = HANGUP
        return self.ended

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)

    @property
    def seconds(self) -> float:
        return len(self._frames) * self._frame / self.rate

    @property
    def worth_keeping(self) -> bool:
        """The caller said something after the tone (an empty message is not a voicemail)."""
        return self.heard_speech


def write_message(directory: Path, pcm: np.ndarray, rate: int) -> Path:
    """``<directory>/voicemail.wav`` (mono 16-bit, 0600, whole or not at all); returns its path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / FILE
    tmp = directory / f".{FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle, wave.open(handle, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
