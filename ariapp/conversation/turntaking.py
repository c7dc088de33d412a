"""Turn taking: when the caller has finished a thought, and what they said.

:class:`TurnTaking` turns the listener's :class:`~ariapp.conversation.frames.Utterance` into a
:class:`~ariapp.conversation.frames.Heard` turn:

- recognition starts speculatively at the caller's first pause (``on_pause``) and is reused when
  nothing but silence followed; the knowledge search for that guess starts too (``ahead``);
- the end-of-turn model judges how the words end while they are recognised, and the caller gets
  ``Timing.turn_hold_s`` more when the words (or the model, when sure) say the thought goes on
  (``turns.should_wait``);
- a caller who goes on before the answer plays is heard as one question with the first part, whose
  transcript line it replaces;
- a short sound over our reply is listened to before it stops us: a backchannel ("mm-hm", "네")
  lets the reply go on, anything else is an interruption (``check_backchannel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import contract
from aipbx.audio.resample import resample
from aipbx.providers.base import EndOfTurn, SpeechToText, Transcript
from aipbx.providers.errors import ProviderError
from ariapp.conversation.confirm import reply_to_offer
from ariapp.conversation.context import CallContext, Marks, TurnLog
from ariapp.conversation.frames import Heard, Utterance
from ariapp.conversation.machine import Ev
from ariapp.conversation.turns import BACKCHANNEL_HINTS, backchannel, should_wait

log = logging.getLogger(__name__)

__all__ = ["TurnTaking", "relisten_hints"]

#: How many of the callee's names (most used first) a second listen is told besides its words.
RELISTEN_NAMES = 4


class TurnTaking:
    """One call's turn taking (see the module docstring)."""

    def __init__(
        self,
        context: CallContext,
        *,
        stt: SpeechToText,
        media_rate: int,
        turn_model: EndOfTurn | None,
        ahead: Callable[[str], None],
        relisten_stt: SpeechToText | None = None,
    ) -> None:
        self.context = context
        self.stt = stt
        self.relisten_stt = relisten_stt or stt  # hears an unsure question again (engine.build_relisten_stts)
        self.rate = media_rate
        self.turn_model = turn_model  # None: the words alone decide whether the caller has finished
        self._ahead = ahead  # start the knowledge search for a pause's transcript
        self.hints: list[str] = []  # names in the callee's knowledge, for the recogniser
        self._kept_audio: np.ndarray | None = None  # a question the caller has not finished yet
        self._open_question: TurnLog | None = None  # its transcript, replaced when it continues
        self._speculative: tuple[int, asyncio.Task[Transcript]] | None = None  # (samples, STT task) from a pause
        self._heard_over: tuple[np.ndarray, Transcript] | None = None  # said over our reply, if not a backchannel

    # --- the caller pauses -------------------------------------------------------------------------
    def on_pause(self, pcm_so_far: np.ndarray) -> None:
        """The caller paused: start recognising now, in case the turn is over.

        At most one speculative recognition runs: the recogniser works on one thread, and a
        cancelled asyncio task does not stop the thread, so stale jobs would delay the real one.
        None starts while the recogniser is busy (``stt.busy``: other callers' jobs queued or
        running): a guess that may be thrown away must never make another caller's answer wait; it
        pays only on an idle recogniser.
        """
        if self._speculative is not None and not self._speculative[1].done():
            return
        if getattr(self.stt, "busy", False):
            return
        task = self.context.tasks.spawn(self._transcribe(pcm_so_far, interim=True), "speculative-stt")
        self._speculative = (len(pcm_so_far), task)
        task.add_done_callback(self._search_ahead)

    def _search_ahead(self, task: asyncio.Task[Transcript]) -> None:
        """The pause's transcript is in: search the knowledge for it now. When the caller said nothing
        more it is the question, and the answer does not wait for the search and the gate's models."""
        if task.cancelled() or task.exception() is not None:
            return
        text = task.result().text.strip()
        if text:
            self._ahead(text)

    # --- the caller stopped: what did they say? ------------------------------------------------------
    async def heard(self, utterance: Utterance, marks: Marks) -> Heard | None:
        """The caller's finished turn, logged and published; None when it held no words."""
        timing = self.context.timing
        pcm = utterance.pcm
        replacing: TurnLog | None = None
        continued = self._kept_audio is not None
        if continued:
            # The caller went on talking before we answered: hear both parts as one question, whose
            # transcript replaces the first part's once it is heard (until then the first part stands).
            assert self._kept_audio is not None
            pcm = np.concatenate([self._kept_audio, pcm])
            replacing = self._open_question
        self._kept_audio = pcm  # until our answer starts playing (then the turn is over)
        # How the words end, judged while they are recognised (~50 ms on a thread of its own). Not
        # again once the caller went on after a pause: the model hears the pause in the joined audio
        # and would hold a finished question a second time (measured: 0.04 for "I wanted to ask about
        # the [0.8 s] parking, is there any?").
        ending: asyncio.Task[float | None] | None = None
        if self.turn_model is not None and not continued:
            ending = self.context.tasks.spawn(self._turn_complete(pcm), "end-of-turn")
        try:
            with marks.waiting_on_model():
                transcript = await self._transcript_for(pcm, combined=self._open_question is not None)
            marks.mark("stt_final")
            question = transcript.text.strip()
            if not question:
                self._kept_audio = None
                return None
            complete = await _ready(ending, timing.turn_model_wait_s) if ending is not None else None
            if complete is not None:
                marks.values["turn_complete"] = round(complete, 3)
            first = not any(t.speaker == "caller" for t in self.context.turns if t is not replacing)
            wait = should_wait(question, self.context.config.language, complete, first)
            ending_said = "no model" if complete is None else f"{complete:.2f}"
            log.info("caller said %r (end of turn: %s)%s", question, ending_said, ", holding for more" if wait else "")
            if wait:
                # "Could you tell me, um," is not a question yet: give the caller a moment to go
                # on (their next onset cancels this reply and keeps the audio; turns.py).
                with marks.waiting_on_model():  # a deliberate wait, not the pipeline's overhead
                    await asyncio.sleep(timing.turn_hold_s)
                marks.values["turn_hold"] = round(timing.turn_hold_s * 1000, 1)
        finally:
            if ending is not None:
                ending.cancel()
        context = self.context
        turn = context.log("caller", question, at=context.since_answer() - (context.clock() - utterance.ended_at))
        turn.latency_ms = marks.values  # the same dict: filled in as the turn goes on
        replaces = None
        if replacing is not None and replacing in context.turns:
            context.turns.remove(replacing)
            replaces = replacing.t
        self._open_question = turn
        context.publish(contract.Transcript(speaker="caller", text=question, final=True, t=turn.t, replaces=replaces))
        relisten = functools.partial(self._relisten, pcm) if context.config.relisten else None
        return Heard(question, turn, marks, relisten)

    def settle(self) -> None:
        """The question has its answer (or a person has it): what the caller says next is new."""
        self._kept_audio = None
        self._open_question = None

    async def _transcript_for(self, utterance: np.ndarray, combined: bool = False) -> Transcript:
        heard_over, self._heard_over = self._heard_over, None
        speculative, self._speculative = self._speculative, None
        if heard_over is not None and heard_over[0] is utterance:
            if speculative is not None:
                speculative[1].cancel()  # a guess at a pause inside it: not needed
            return heard_over[1]  # said over our reply and heard then: not a backchannel
        if speculative is not None and combined:
            with contextlib.suppress(Exception):
                await speculative[1]  # covers only the second part; let its thread finish
        elif speculative is not None:
            samples, task = speculative
            # Reuse the recognition started at the pause if nothing but silence came after it.
            tail = utterance[samples:]
            if not len(tail) or float(np.abs(tail).max()) < 500:
                return await task
            # Stale: the caller said more. Let it finish (its thread is busy anyway), then redo.
            with contextlib.suppress(Exception):
                await task
        return await self._transcribe(utterance)

    async def _transcribe(
        self,
        pcm: np.ndarray,
        interim: bool = False,
        hints: Sequence[str] | None = None,
        stt: SpeechToText | None = None,
    ) -> Transcript:
        """What ``pcm`` says; ``hints``: what to expect (default: the callee's names); ``stt``: the
        recogniser (default: the call's)."""
        stt = stt or self.stt
        audio = resample(pcm, self.rate, stt.sample_rate)
        transcript = await stt.transcribe(audio, self.context.lang, self.hints if hints is None else hints)
        if interim and transcript.text:  # what we heard so far, shown live before the turn is over
            self.context.publish(
                contract.Transcript(
                    speaker="caller", text=transcript.text, final=False, t=round(self.context.since_answer(), 2)
                )
            )
        return transcript

    async def _relisten(self, pcm: np.ndarray, words: Sequence[str]) -> str:
        """``pcm`` recognised again by the second-listen recogniser, told to expect ``words`` besides the
        callee's first names."""
        return (await self._transcribe(pcm, hints=relisten_hints(self.hints, words), stt=self.relisten_stt)).text

    async def _turn_complete(self, utterance: np.ndarray) -> float | None:
        """The end-of-turn model's probability that ``utterance`` ends the turn; None when it failed
        (the words alone decide then: a model must never cost the caller an answer)."""
        assert self.turn_model is not None
        try:
            return await self.turn_model.complete(resample(utterance, self.rate, self.turn_model.sample_rate))
        except Exception as exc:  # noqa: BLE001 - whatever broke, the caller is answered
            log.warning("end-of-turn model failed, the words decide: %r", exc)
            return None

    # --- the caller talks over our reply -----------------------------------------------------------
    async def check_backchannel(self, utterance: Utterance, offer_open: bool) -> None:
        """What the caller said over our paused reply: a backchannel resumes it, anything else ends
        it. ``offer_open``: our reply asked "did you mean …?", so a "yes" over it is an answer."""
        lang = self.context.lang
        said = None
        if len(utterance.pcm) / self.rate <= self.context.timing.backchannel_max_s:
            try:
                heard = await self._transcribe(utterance.pcm)
                self._heard_over = (utterance.pcm, heard)  # an interruption's reply starts from it
                said = heard.text
                if not backchannel(said) and reply_to_offer(said, lang)[0] is None:
                    # A hum is heard as words ("mm-hmm" as "in a month"): listen again expecting one.
                    # A real interruption keeps its words ("What about Sunday?"), so it still stops us.
                    again = (await self._transcribe(utterance.pcm, hints=BACKCHANNEL_HINTS[lang])).text
                    if backchannel(again):
                        log.info("%r heard again as %r, a backchannel", said, again)
                        said = again
            except ProviderError as exc:
                log.warning("could not hear what was said over the reply: %r", exc)
        if said is not None and offer_open and reply_to_offer(said, lang)[0] is not None:
            self.context.post(Ev.INTERRUPTION, utterance)  # "yes" over "Just to check, …?" answers it
        elif said is not None and backchannel(said):
            log.info("backchannel %r: the reply goes on", said)
            self.context.post(Ev.BACKCHANNEL, None)
        else:
            self.context.post(Ev.INTERRUPTION, utterance)


async def _ready(task: asyncio.Future[Any], seconds: float) -> Any:
    """``task``'s result if it is done within ``seconds``, else None (it is left running)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return task.result() if done else None


def relisten_hints(names: Sequence[str], words: Sequence[str]) -> list[str]:
    """What a second listen is told to expect: the callee's first :data:`RELISTEN_NAMES` names and
    ``words`` (``deciding.expected_words``), each once."""
    return list(dict.fromkeys([*names[:RELISTEN_NAMES], *words]))
