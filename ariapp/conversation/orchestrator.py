"""One call's conversation: drives the state table (``machine.py``) with events from the media plane
and runs each caller turn through the stages, which pass typed frames (``frames.py``):

    Utterance -> turn taking (turntaking.py: STT started at the caller's first pause, end of turn)
      -> Heard -> deciding (deciding.py: the callee's knowledge, the relevance gate, "did you mean …?")
      -> Answer -> speaking (speaking.py: answer stream cut into clauses, TTS per piece, the speaker)
      |  AskPerson -> holding (holding.py: the console's operators, hold music, voicemail)

A reply that does not answer (not sure, or a person asked for lack of knowledge) starts no sooner than
``Timing.unsure_after_s`` after the caller's last sound: a question cut in two by a pause is most
often unsure of its first half, and the caller who goes on in that time is heard whole.
The first audio goes out while later sentences are still being generated, and the console is told
the reply so far as each piece starts to play (``reply.speaking``), not after the turn. Every turn records its
latency parts relative to the end of the caller's speech. A slow reply gets a short filler; a failed
or timed-out provider gets a polite fallback; the call never sits in dead air.

Events arrive from the 20 ms tick through :meth:`Orchestrator.post` (non-blocking); everything else
runs in the call's :class:`~ariapp.tasks.TaskScope`, which the conversation closes when it ends. Every
wait is in the config's :class:`~ariapp.conversation.options.Timing`; the clock is the event loop's,
so tests run the whole conversation on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np

import contract  # the console's events, named as contract.<Type> (Transcript, Retrieval are taken here)
from aipbx.providers.base import EndOfTurn, SpeechToText, TextToSpeech
from aipbx.providers.errors import ProviderError
from ariapp.conversation.answerer import Answerer, Question
from ariapp.conversation.context import CallContext, Marks, TurnLog
from ariapp.conversation.deciding import Deciding, Retrieval
from ariapp.conversation.frames import Answer, AskPerson, Utterance
from ariapp.conversation.hitl import LOW_CONFIDENCE, Desk, HitlConfig, MessageTaker
from ariapp.conversation.holding import Holding
from ariapp.conversation.machine import TRANSFERABLE, Cmd, Ev, State, step
from ariapp.conversation.options import ConversationConfig
from ariapp.conversation.speaking import FALLBACK, FILLER, Reply, Speaking
from ariapp.conversation.transfer import hold_for_transfer
from ariapp.conversation.turntaking import TurnTaking
from ariapp.media.audio import Speaker
from ariapp.tasks import TaskScope, cancel_and_wait

log = logging.getLogger(__name__)

__all__ = ["FALLBACK", "FILLER", "Orchestrator", "TurnLog"]


class Orchestrator:
    def __init__(
        self,
        *,
        config: ConversationConfig,
        speaker: Speaker,
        media_rate: int,
        stt: SpeechToText,
        tts: TextToSpeech,
        answerer: Answerer,
        retriever: Retrieval | None,
        greeting: Callable[[], Awaitable[np.ndarray]],
        since_answer: Callable[[], float],
        clock: Callable[[], float] | None = None,
        publish: Callable[[contract.Event], None] | None = None,
        desk: Desk | None = None,
        hitl: HitlConfig | None = None,
        voicemail: MessageTaker | None = None,
        turn_model: EndOfTurn | None = None,
        relisten_stt: SpeechToText | None = None,
    ) -> None:
        self.config = config
        self.speaker = speaker
        self.tasks = TaskScope("conversation", config.timing.stop_grace_s)
        self.context = CallContext(
            config=config,
            clock=clock or asyncio.get_running_loop().time,  # the loop's: virtual in tests
            since_answer=since_answer,
            publish=publish or (lambda event: None),
            post=self.post,
            tasks=self.tasks,
            desk=desk,
            hitl=hitl or HitlConfig(),
            voicemail=voicemail,
        )
        self.deciding = Deciding(self.context, retriever)
        self.turn_taking = TurnTaking(
            self.context,
            stt=stt,
            media_rate=media_rate,
            turn_model=turn_model,
            ahead=self.deciding.ahead,
            relisten_stt=relisten_stt,
        )
        self.speaking = Speaking(
            self.context, speaker=speaker, media_rate=media_rate, tts=tts, answerer=answerer, greeting=greeting
        )
        self._transfer: asyncio.Future[bool] | None = None  # putting the caller through: did the person take them?
        self.holding = Holding(self.context, self.speaking, lambda: self._transfer)
        self.state = State.IDLE
        self._events: asyncio.Queue[tuple[Ev, object]] = asyncio.Queue()
        self._reply: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None  # is what was said over our reply a backchannel?
        self.barge_ins = 0

    @property
    def turns(self) -> list[TurnLog]:
        return self.context.turns

    @property
    def offers(self) -> int:
        """How many "did you mean …?" checks the caller heard."""
        return self.deciding.offers

    @property
    def hitl_requests(self) -> int:
        return self.holding.requests

    def report(self) -> list[dict]:
        return self.context.report()

    # --- inputs (from the media tick; never block) -----------------------------------------------
    def post(self, event: Ev, payload: object = None) -> None:
        self._events.put_nowait((event, payload))

    def transferring(self, operator: str) -> bool:
        """The caller is being put through to ``operator`` (``ariapp.conversation.transfer``): say so and
        hold. False when the conversation cannot hand over now (not started, voicemail, ended, already)."""
        if self.state not in TRANSFERABLE or (self._transfer is not None and not self._transfer.done()):
            return False
        self._transfer = asyncio.get_running_loop().create_future()
        self.post(Ev.TRANSFER, operator)
        return True

    def taken_over(self) -> None:
        """An operator listening in took the caller: our audio stops at once and the AI is done (a help
        request being held is cancelled as a transfer)."""
        if self._transfer is None or self._transfer.done():
            self._transfer = asyncio.get_running_loop().create_future()
            self._transfer.set_result(True)
        self.post(Ev.TAKEN_OVER)

    def transfer_settled(self, connected: bool) -> None:
        """The operator took the caller (the AI is done) or not (the AI says so and goes on)."""
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(connected)

    def on_pause(self, pcm_so_far: np.ndarray) -> None:
        """The caller paused: start recognising now, in case the turn is over (turntaking.py)."""
        if self.state is State.VOICEMAIL:
            return  # a message is being left: nothing it says is answered
        self.turn_taking.on_pause(pcm_so_far)

    # --- main loop ---------------------------------------------------------------------------------
    async def run(self) -> None:
        self.post(Ev.ANSWERED)
        # the callee's knowledge gets ready while the greeting plays (its first question then waits on nothing)
        self.tasks.spawn(self._prepare_knowledge(), "prepare-knowledge")
        try:
            while self.state is not State.ENDED:
                event, payload = await self._events.get()
                previous = self.state
                self.state, commands = step(self.state, event)
                if self.state is not previous:
                    self.context.publish(contract.ConversationState(state=self.state.value))
                for command in commands:
                    self._execute(command, event, payload)
        finally:
            await cancel_and_wait(self._reply, self.config.timing.stop_grace_s)
            await self.tasks.close()
            for turn in self.turns:  # e.g. a reply cut off while it was synthesised: the console hears of it too
                if turn.speaker == "ai" and turn.text:
                    self.context.played(turn)

    def _execute(self, command: Cmd, event: Ev, payload: object) -> None:
        timing = self.config.timing
        if command is Cmd.PLAY_GREETING:
            self._start(self.speaking.greeting(), "greeting")
        elif command is Cmd.START_REPLY:
            assert isinstance(payload, Utterance), payload
            self._start(self._answer(payload), "reply")
        elif command is Cmd.CANCEL_REPLY:
            self._stop_speaking(barge_in=event in (Ev.CALLER_ONSET, Ev.INTERRUPTION))
        elif command is Cmd.PAUSE_REPLY:
            self.speaker.pause()
        elif command is Cmd.RESUME_REPLY:
            self.speaker.resume()
        elif command is Cmd.CHECK_BACKCHANNEL:
            assert isinstance(payload, Utterance), payload
            if self._check is not None and not self._check.done():
                self._check.cancel()  # the caller said more before we decided: the latest utterance decides
            offer_open = self.deciding.offered is not None
            self._check = self.tasks.spawn(self.turn_taking.check_backchannel(payload, offer_open), "backchannel")
        elif command is Cmd.KEEP_QUESTION:
            pass  # turn taking keeps the question's audio until our answer plays
        elif command is Cmd.START_TRANSFER and self._transfer is not None:
            settled = self._transfer
            self._start(
                hold_for_transfer(
                    operator=str(payload or ""),
                    language=self.config.language,
                    settled=settled,
                    say=self.speaking.say,
                    music_until=lambda done: self.speaking.music_until(
                        self.context.clock() + timing.music_chunk_s, done
                    ),
                    post=self.post,
                ),
                "transfer-hold",
            )
        elif command is Cmd.SAY_FALLBACK:
            self._start(self.speaking.say(self.speaking.fallback), "fallback")

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Make ``coro`` the reply task: what the AI is doing now (one at a time)."""
        previous = self._reply
        if previous is not None and not previous.done():
            previous.cancel()
        self._reply = self.tasks.spawn(coro, name)

    def _stop_speaking(self, *, barge_in: bool) -> None:
        cut = self.speaker.stop()
        if barge_in and cut:
            self.barge_ins += 1
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()

    async def _prepare_knowledge(self) -> None:
        self.turn_taking.hints = await self.deciding.prepare()

    # --- one caller turn ---------------------------------------------------------------------------
    async def _let_the_caller_go_on(self, marks: Marks) -> None:
        """Wait until ``Timing.unsure_after_s`` after the caller's last sound: if they go on talking
        meanwhile (a pause inside their question), this reply is cancelled and the whole is heard."""
        delay = marks.origin + self.config.timing.unsure_after_s - self.context.clock()
        if delay > 0:
            with marks.waiting_on_model():  # a deliberate wait, not the pipeline's overhead
                await asyncio.sleep(delay)
            marks.values["unsure_hold"] = round(delay * 1000, 1)

    async def _answer(self, utterance: Utterance) -> None:
        """Hear the turn, decide, then answer it or ask a person (the module docstring's stages)."""
        timing = self.config.timing
        marks = Marks(self.context.clock, utterance.ended_at)
        filler = self.tasks.spawn(self.speaking.filler_after(timing.filler_after_s), "filler")
        reply: Reply | None = None
        person: AskPerson | None = None
        try:
            # The budget covers producing the answer, not playing it.
            async with asyncio.timeout(timing.reply_timeout_s):
                heard = await self.turn_taking.heard(utterance, marks)
                if heard is None:
                    self.post(Ev.REPLY_EMPTY)
                    return
                decision = await self.deciding.decide(heard)
                if self.deciding.retriever is not None and _unsure(decision):
                    await self._let_the_caller_go_on(marks)
                if isinstance(decision, AskPerson):
                    person = decision
                else:
                    reply = Reply()
                    question = Question(
                        decision.asked,
                        self.config.owner,
                        self.config.language,
                        [p.text for p in decision.passages],
                        decision.confidence or 0.0,
                        self.context.history(),
                        business=self.config.business,
                    )
                    said = None if decision.offer is None else decision.offer.text
                    await self.speaking.answer(question, marks, filler, reply, self.turn_taking.settle, said=said)
                    if decision.offer is not None and reply.handle is not None:
                        self.deciding.asked(decision.offer)
            if person is not None:
                filler.cancel()
                self.turn_taking.settle()  # the question is settled: a person has it
                await self.holding.ask(person, heard.turn)
                return
            assert reply is not None  # made above when no person was needed
            if reply.handle is None:
                self.post(Ev.REPLY_EMPTY)
                return
            assert reply.turn is not None  # made with the handle
            await self.speaking.finish(reply.handle, reply.turn, reply.pieces, reply.piece_ends)
            log.info("turn latency (ms after end of speech): %s", marks.values)
        except (ProviderError, TimeoutError) as exc:
            log.warning("reply failed: %r", exc)
            self.post(Ev.PROVIDER_FAILED, exc)
        finally:
            filler.cancel()
            if reply is not None:
                reply.close(self.speaker, marks)
                if reply.turn is not None and reply.turn.text:
                    self.context.played(reply.turn)  # a no-op after finish(); else cut off before it finished arriving
                self.context.publish(contract.Latency(dict(marks.values)))


def _unsure(decision: Answer | AskPerson) -> bool:
    """Whether ``decision`` answers nothing: not sure, or a person asked because the knowledge has no answer."""
    if isinstance(decision, AskPerson):
        return decision.trigger.reason == LOW_CONFIDENCE
    return not decision.passages and decision.offer is None
