"""Per-call audio on the 20 ms clock: what we say (:class:`Speaker`).

Driven synchronously from the media clock's tick, so it never awaits and never blocks. The speaker
holds whole frames and hands out exactly one per tick; stopping it (barge-in) takes effect on the
very next tick. What we hear is cut into utterances by :class:`aipbx.audio.listener.Listener`
(shared: the console's transcripts after the call cut the recordings the same way).

The speaker is shared by the call layer (``ariapp.calls``: the session drives it) and the
conversation (``ariapp.conversation``: the orchestrator speaks through it), so it lives in the media
plane, below both: the conversation never imports the call layer (pyproject's import contracts).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SpeechHandle:
    """One thing we say; ``done`` is set when it was played out or stopped."""

    text: str
    frames_total: int = 0
    frames_played: int = 0
    input_complete: bool = False
    interrupted: bool = False
    started_at: float | None = None  # monotonic time of the first frame sent
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seconds_played(self) -> float:
        return self.frames_played * 0.02

    @property
    def seconds_left(self) -> float:
        """Audio queued and not played yet: how long the caller hears this before it runs out."""
        return max(0, self.frames_total - self.frames_played) * 0.02


class Speaker:
    def __init__(self, frame_samples: int, clock: Callable[[], float]) -> None:
        self.frame_samples = frame_samples
        self._clock = clock
        self._queue: deque[tuple[SpeechHandle, np.ndarray]] = deque()
        self._pending: dict[int, np.ndarray] = {}  # per handle: samples not yet a whole frame
        self._handles: deque[SpeechHandle] = deque()
        self._cues: dict[int, deque[tuple[int, Callable[[], None]]]] = {}  # per handle: (frame index, call)
        self.paused = False  # audio stays queued but nothing plays (the caller is talking over us)

    @property
    def speaking(self) -> bool:
        return bool(self._handles)

    def pause(self) -> None:
        """Hold what is queued from the next tick on (a possible backchannel); :meth:`resume` goes on."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def start(self, text: str) -> SpeechHandle:
        handle = SpeechHandle(text)
        self._handles.append(handle)
        return handle

    def push(self, handle: SpeechHandle, pcm: np.ndarray) -> None:
        """Add audio (int16 at the media rate) to an utterance; whole frames become playable at once."""
        if handle.done.is_set():
            return
        rest = self._pending.pop(id(handle), None)
        data = pcm if rest is None else np.concatenate([rest, pcm])
        whole = len(data) // self.frame_samples * self.frame_samples
        for start in range(0, whole, self.frame_samples):
            self._queue.append((handle, data[start : start + self.frame_samples]))
            handle.frames_total += 1
        if whole < len(data):
            self._pending[id(handle)] = data[whole:]

    def cue(self, handle: SpeechHandle, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the tick: it must not block) when the next audio pushed for ``handle``
        starts to play; never, if it is cut off before (``stop``)."""
        if not handle.done.is_set():
            self._cues.setdefault(id(handle), deque()).append((handle.frames_total, callback))

    def finish(self, handle: SpeechHandle) -> None:
        """No more audio for this utterance: pad the last partial frame and let it drain."""
        rest = self._pending.pop(id(handle), None)
        if rest is not None and len(rest):
            frame = np.zeros(self.frame_samples, dtype=np.int16)
            frame[: len(rest)] = rest
            self._queue.append((handle, frame))
            handle.frames_total += 1
        handle.input_complete = True
        self._settle()

    def next_frame(self) -> np.ndarray | None:
        """Called once per tick by the media clock."""
        if self.paused:
            return None
        if not self._queue:
            self._settle()
            return None
        handle, frame = self._queue.popleft()
        if handle.started_at is None:
            handle.started_at = self._clock()
        cues = self._cues.get(id(handle))
        while cues and cues[0][0] <= handle.frames_played:  # this frame is the cued one
            cues.popleft()[1]()
        handle.frames_played += 1
        self._settle()
        return frame

    def stop(self) -> list[SpeechHandle]:
        """Barge-in: drop everything not yet played; returns the handles that were cut short."""
        cut = []
        for handle in self._handles:
            if not handle.done.is_set():
                handle.interrupted = handle.frames_played < handle.frames_total or not handle.input_complete
                cut.append(handle)
                handle.done.set()
        self._queue.clear()
        self._pending.clear()
        self._handles.clear()
        self._cues.clear()  # what was not played is never announced
        self.paused = False
        return cut

    def _settle(self) -> None:
        while self._handles:
            head = self._handles[0]
            if head.done.is_set():
                self._handles.popleft()
                self._cues.pop(id(head), None)
            elif head.input_complete and head.frames_played >= head.frames_total:
                head.done.set()
                self._handles.popleft()
                self._cues.pop(id(head), None)
            else:
                break
