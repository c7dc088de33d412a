"""One speaker's audio cut into timed utterances, for transcripts of calls.

The same cutting serves the live transcript of a phone-to-phone call (fed frame by frame from the
media clock) and the transcript written after the call from ``caller.wav`` / ``callee.wav`` (fed from
the file): both use :class:`~aipbx.audio.listener.Listener`, so a line has the same boundaries
whichever way it was made.

Time is counted in frames fed, missing frames included (fed as silence), so ``start_s``/``end_s``
are seconds from the start of the speaker's track. Utterances end after ``end_ms`` of silence,
longer than a conversation's end of turn: a transcript line should be a sentence, not a breath.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from aipbx.audio.listener import Listener

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance of one speaker; times in seconds from the start of the track."""

    speaker: str
    start_s: float
    end_s: float  # the end of the speech (the trailing silence that ended it is not counted)
    pcm: np.ndarray


class Segmenter:
    """Feeds 20 ms frames to a :class:`Listener` and reports each utterance with its times.

    Args:
        speaker: ``caller`` or ``callee``.
        sample_rate: Of the frames fed.
        on_segment: Called with each finished utterance.
        end_ms: Silence that ends an utterance.
        on_pause: Called with the audio so far at a pause inside speech (for interim text).
    """

    def __init__(
        self,
        speaker: str,
        sample_rate: int,
        on_segment: Callable[[Segment], None],
        *,
        end_ms: int = 600,
        pause_ms: int = 300,
        on_pause: Callable[[float, np.ndarray], None] | None = None,
    ) -> None:
        self.speaker = speaker
        self.rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self._on_segment = on_segment
        self._on_pause = on_pause
        self._end_s = end_ms / 1000
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        self._flushing = False
        self.frames = 0
        self.listener = Listener(
            sample_rate,
            lambda: None,
            self._utterance,
            end_ms=end_ms,
            pause_ms=pause_ms,
            max_utterance_s=20.0,
            on_pause=self._pause if on_pause else None,
        )

    @property
    def elapsed_s(self) -> float:
        return self.frames * FRAME_MS / 1000

    def feed(self, frame: np.ndarray | None) -> None:
        """The next 20 ms (``None``: nothing arrived, counted as silence)."""
        self.frames += 1
        self.listener.feed(self._silence if frame is None else frame)

    def flush(self) -> None:
        """The track is over: report the utterance in progress."""
        self._flushing = True
        try:
            self.listener.flush()
        finally:
            self._flushing = False

    def _utterance(self, pcm: np.ndarray) -> None:
        trailing = 0.0 if self._flushing or len(pcm) / self.rate <= self._end_s else self._end_s
        end = self.elapsed_s - trailing
        start = max(0.0, self.elapsed_s - len(pcm) / self.rate)
        self._on_segment(Segment(self.speaker, round(start, 2), round(max(start, end), 2), pcm))

    def _pause(self, pcm: np.ndarray) -> None:
        assert self._on_pause is not None
        self._on_pause(max(0.0, self.elapsed_s - len(pcm) / self.rate), pcm)


def segments_of(speaker: str, pcm: np.ndarray, sample_rate: int, *, end_ms: int = 600) -> Iterator[Segment]:
    """Every utterance of a whole recorded track (e.g. ``callee.wav``), in order."""
    found: list[Segment] = []
    segmenter = Segmenter(speaker, sample_rate, found.append, end_ms=end_ms)
    step = segmenter.frame_samples
    for start in range(0, len(pcm) - step + 1, step):
        segmenter.feed(pcm[start : start + step])
        yield from found
        found.clear()
    segmenter.flush()
    yield from found
