"""The AI's side of the line: the greeting, fixed messages, tones, hold music and streamed answers.

Everything the caller hears goes through :class:`Speaking`: text is read in its spoken form
(numbers, names), synthesised, resampled to the call's rate and pushed into the call's speaker as it
arrives, so the first sentence plays while later ones are still being written. Each AI turn is
logged as it was heard: after barge-in, only the part that was played (:func:`mark_unspoken`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

import contract
from aipbx.audio.resample import StreamResampler
from aipbx.providers.base import TextToSpeech, needed_by
from aipbx.text.guard import reply_splitter
from aipbx.text.prompt import system_prompt
from ariapp.conversation.answerer import Answerer, Question
from ariapp.conversation.context import CallContext, Marks, TurnLog
from ariapp.conversation.hitl import hold_music
from ariapp.conversation.machine import Ev
from ariapp.conversation.spoken import spoken
from ariapp.media.audio import Speaker, SpeechHandle

log = logging.getLogger(__name__)

__all__ = ["FALLBACK", "FILLER", "Reply", "Speaking", "mark_unspoken"]

FILLER = {"en": "One moment, please.", "ko": "잠시만 기다려 주세요."}
FALLBACK = {
    "en": "Sorry, I'm having trouble answering right now. {owner} will get back to you.",
    "ko": "죄송합니다. 지금은 답변드리기 어렵습니다. {owner}님이 다시 연락드리겠습니다.",
}


@dataclass
class Reply:
    """The reply being produced: its speech handle, transcript turn and piece boundaries."""

    handle: SpeechHandle | None = None
    turn: TurnLog | None = None
    pieces: list[str] = field(default_factory=list)
    piece_ends: list[int] = field(default_factory=list)  # speaker frame count at the end of each piece

    def close(self, speaker: Speaker, marks: Marks) -> None:
        """Whatever way the reply ended: nothing left open, the transcript says what was heard."""
        if self.handle is None:
            return
        if not self.handle.input_complete:
            speaker.finish(self.handle)  # e.g. TTS failed on a later sentence: let the rest play
        if self.handle.interrupted and self.turn is not None:
            mark_unspoken(self.turn, self.handle, self.pieces, self.piece_ends)
        if self.handle.started_at is not None:  # set by the media tick that sent the first frame
            marks.first_rtp(self.handle.started_at)


class Speaking:
    """Speaks for one call (see the module docstring)."""

    def __init__(
        self,
        context: CallContext,
        *,
        speaker: Speaker,
        media_rate: int,
        tts: TextToSpeech,
        answerer: Answerer,
        greeting: Callable[[], Awaitable[np.ndarray]],
    ) -> None:
        self.context = context
        self.speaker = speaker
        self.rate = media_rate
        self.tts = tts
        self.answerer = answerer
        self._greeting = greeting

    @property
    def fallback(self) -> str:
        """The polite apology when no answer can be given."""
        return FALLBACK[self.context.lang].format(owner=self.context.config.owner)

    # --- fixed texts and sounds -------------------------------------------------------------------
    async def greeting(self) -> None:
        text = self.context.config.greeting_text
        turn = self.context.log("ai", text)
        pcm = await self._greeting()
        log.info(
            "greeting: %.1f s of audio, ready %.2f s after the answer",
            len(pcm) / self.rate,
            self.context.since_answer(),
        )
        handle = self.speaker.start(text)
        self._announce(handle, turn, [text])
        self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await self.finish(handle, turn, [text], [handle.frames_total])

    async def say(self, text: str) -> None:
        turn = self.context.log("ai", text)
        handle = self.speaker.start(text)
        self._announce(handle, turn, [text])
        async for pcm in self.synthesize(text):
            self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await self.finish(handle, turn, [text], [handle.frames_total])

    async def play(self, pcm: np.ndarray, label: str) -> None:
        handle = self.speaker.start(label)
        self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await handle.done.wait()

    async def music_until(self, deadline: float, answer: asyncio.Future) -> None:
        """Hold music until ``deadline`` (the call's clock), cut short when ``answer`` is done."""
        seconds = deadline - self.context.clock()
        if seconds <= 0:
            return
        handle = self.speaker.start("(hold music)")
        music = self.context.config.hold_music or hold_music
        self.speaker.push(handle, music(self.rate, seconds))
        self.speaker.finish(handle)
        played = asyncio.ensure_future(handle.done.wait())
        try:
            await asyncio.wait({played, answer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            played.cancel()
            if not handle.done.is_set():
                self.speaker.stop()  # the answer is here: the music stops on the next frame

    async def filler_after(self, seconds: float) -> None:
        """ "One moment, please." when nothing plays ``seconds`` after the caller stopped."""
        await asyncio.sleep(seconds)
        if self.speaker.speaking:
            return
        text = FILLER[self.context.lang]
        handle = self.speaker.start(text)
        try:
            async for pcm in self.synthesize(text):
                self.speaker.push(handle, pcm)
        finally:
            # Cancelled half-way (the answer arrived): what was queued plays out, nothing blocks.
            self.speaker.finish(handle)
        if handle.frames_total:
            self.context.played(self.context.log("ai", text))

    # --- answers ----------------------------------------------------------------------------------
    async def answer(
        self,
        question: Question,
        marks: Marks,
        filler: asyncio.Future,
        reply: Reply,
        on_start: Callable[[], None],
        said: str | None = None,
    ) -> None:
        """Stream the answer into the speaker, piece by piece, as fast as text and audio arrive.

        ``said``: a reply already written (the "did you mean …?" check) instead of the answerer's.
        ``on_start``: called when its first audio is ready (the question is settled then).
        """
        # Every piece passes the output guard before TTS (guard.py): no prompt leaks, markup or actions.
        splitter = reply_splitter(
            system_prompt(question.owner_name, question.language, question.business),
            question.owner_name,
            [*question.passages, *([said] if said else [])],
            self.fallback,
            heard=[question.text, *(turn.text for turn in question.history)],
            business=question.business,
        )
        clock = self.context.clock

        async def speak_piece(piece: str) -> None:
            requested = clock()
            announced = False
            # When the caller hears silence without this piece (a shared voice serves the earliest
            # first): the first since they stopped talking, a later one when what is queued runs out.
            if reply.handle is None:
                deadline = marks.origin
            else:
                deadline = requested + reply.handle.seconds_left
            with needed_by(deadline):
                async for pcm in self.synthesize(piece):
                    if reply.handle is None:
                        filler.cancel()
                        marks.model_s += clock() - requested
                        marks.mark("tts_first_audio")
                        reply.handle = self.speaker.start(piece)
                        reply.turn = self.context.log("ai", "")
                        on_start()
                        self.context.post(Ev.REPLY_AUDIO, None)
                    if not announced:
                        announced = True
                        assert reply.turn is not None  # made with the handle
                        self._announce(reply.handle, reply.turn, [*reply.pieces, piece])
                    self.speaker.push(reply.handle, pcm)
            if reply.handle is not None:
                reply.pieces.append(piece)
                reply.piece_ends.append(reply.handle.frames_total)
                assert reply.turn is not None  # made with the handle
                reply.turn.text = " ".join(reply.pieces)

        requested = clock()
        async for delta in self.answerer.answer(question) if said is None else _once(said):
            if "llm_first_token" not in marks.values:
                marks.model_s += clock() - requested
            marks.mark("llm_first_token")
            for piece in splitter.push(delta):
                await speak_piece(piece)
        for piece in splitter.flush():
            await speak_piece(piece)
        if reply.handle is not None:
            self.speaker.finish(reply.handle)

    async def finish(self, handle: SpeechHandle, turn: TurnLog, pieces: list[str], piece_ends: list[int]) -> None:
        """Wait until ``handle`` has played (or was cut off), then log the turn as it was heard."""
        try:
            await handle.done.wait()
        finally:
            mark_unspoken(turn, handle, pieces, piece_ends)
            self.context.played(turn)
        if not handle.interrupted:
            self.context.post(Ev.SPEECH_DONE, None)

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """``text`` as audio at the call's rate; the voice reads its spoken form (numbers, names)."""
        config = self.context.config
        resampler = StreamResampler(self.tts.sample_rate, self.rate)
        async for chunk in self.tts.synthesize(spoken(text, config.language, (config.owner,))):
            yield resampler.process(chunk)
        tail = resampler.flush()
        if len(tail):
            yield tail

    def _announce(self, handle: SpeechHandle, turn: TurnLog, pieces: list[str]) -> None:
        """Publish the reply so far when the audio pushed next (its newest piece) starts to play."""
        event = contract.ReplySpeaking(t=turn.t, text=" ".join(pieces))
        self.speaker.cue(handle, lambda: self.context.publish(event))


def mark_unspoken(turn: TurnLog, handle: SpeechHandle, pieces: list[str], piece_ends: list[int]) -> None:
    """After barge-in: keep in the transcript only what was played; the rest is marked unspoken."""
    if not handle.interrupted:
        return
    turn.interrupted = True
    spoken = [p for p, end in zip(pieces, piece_ends, strict=False) if end <= handle.frames_played]
    rest = pieces[len(spoken) :]
    if rest:
        # The piece cut mid-way: the words already played, in proportion to its frames played.
        start = piece_ends[len(spoken) - 1] if spoken else 0
        length = max(1, piece_ends[len(spoken)] - start)
        words = rest[0].split()
        heard = round(len(words) * max(0, handle.frames_played - start) / length)
        if heard:
            spoken.append(" ".join(words[:heard]) + "…")
        rest = [" ".join(words[heard:]), *rest[1:]] if words[heard:] else rest[1:]
    turn.text = " ".join(spoken)
    turn.unspoken = " ".join(rest)


async def _once(text: str) -> AsyncIterator[str]:
    yield text
