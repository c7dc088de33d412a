"""What we hear on the 20 ms clock: the caller's audio cut into utterances with the VAD.

Driven synchronously, one frame at a time, so it never awaits and never blocks: the ARI app feeds
it from the media clock's tick (conversations, live transcripts) and :mod:`aipbx.audio.segmenter`
from a recording's frames (transcripts after the call), so both cut speech at the same places.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from aipbx.audio.vad import SpeechDetector, VadEvent


class Listener:
    """Cuts the caller's audio into utterances: VAD start/end with a short pre-roll.

    Besides the start and the end of an utterance it reports a *pause*: ``pause_ms`` of silence
    inside speech, well before the end-of-turn decision (``end_ms``). The conversation starts
    recognising at the pause, so the transcript is often ready by the time the turn is over.
    """

    def __init__(
        self,
        sample_rate: int,
        on_start: Callable[[], None],
        on_utterance: Callable[[np.ndarray], None],
        *,
        end_ms: int = 500,
        preroll_ms: int = 300,
        max_utterance_s: float = 15.0,
        pause_ms: int = 200,
        on_pause: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self.vad = SpeechDetector(sample_rate=sample_rate, mode=2, frame_ms=20, start_ms=60, end_ms=end_ms)
        self._on_start = on_start
        self._on_utterance = on_utterance
        self._on_pause = on_pause
        self._pause_frames = max(1, pause_ms // 20)
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, preroll_ms // 20))
        self._frames: list[np.ndarray] = []
        self._max_frames = int(max_utterance_s * 50)
        self._quiet_run = 0
        self._discard = False
        self.enabled = True

    @property
    def in_speech(self) -> bool:
        return self.vad.in_speech

    def discard_current(self) -> None:
        """The utterance in progress is not the caller's (our echo): drop it when it ends."""
        self._discard = True

    def keep_current(self) -> None:
        """Undo :meth:`discard_current`: the caller is talking after all."""
        self._discard = False

    def feed(self, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        event = self.vad.process(frame)
        if self.vad.in_speech or event is VadEvent.SPEECH_END:
            self._frames.append(frame)
            self._track_pause()
        else:
            self._preroll.append(frame)
        if event is VadEvent.SPEECH_START:
            self._frames = [*self._preroll, *self._frames]
            self._preroll.clear()
            self._discard = False
            self._quiet_run = 0
            if self.enabled:
                self._on_start()
        elif event is VadEvent.SPEECH_END or len(self._frames) >= self._max_frames:
            # A cut for length keeps the VAD in speech: the rest becomes the next utterance
            # without a second "caller started speaking" (which would be a false barge-in).
            utterance = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
            self._frames = []
            discard, self._discard = self._discard, False
            if self.enabled and len(utterance) and not discard:
                self._on_utterance(utterance)

    def flush(self) -> None:
        """End the utterance in progress now (the call is over): it is reported like any other."""
        if self._frames and self.vad.in_speech:
            utterance = np.concatenate(self._frames)
            discard, self._discard = self._discard, False
            if self.enabled and not discard:
                self._on_utterance(utterance)
        self._frames = []
        self._preroll.clear()
        self.vad.reset()

    def _track_pause(self) -> None:
        if self.vad.last_voiced:
            self._quiet_run = 0
            return
        self._quiet_run += 1
        if self._quiet_run == self._pause_frames and self._on_pause and self.enabled and not self._discard:
            self._on_pause(np.concatenate(self._frames))
