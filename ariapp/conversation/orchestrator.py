"""One call's conversation: drives the state table (``machine.py``) with events from the media plane
and runs the reply pipeline:

    utterance -> STT (started at the caller's first pause, reused if they said nothing more)
      -> retrieval over the callee's knowledge -> answer stream (LLM or extractive)
      -> cut into clauses/sentences as text arrives -> TTS per piece -> the speaker, frame by frame

The first audio goes out while later sentences are still being generated, and the console is told
the reply so far as each piece starts to play (``reply.speaking``), not after the turn. Every turn records its
latency parts relative to the end of the caller's speech. A slow reply gets a short filler; a failed
or timed-out provider gets a polite fallback; the call never sits in dead air.

Events arrive from the 20 ms tick through :meth:`Orchestrator.post` (non-blocking); everything else
runs in tasks this orchestrator owns and cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, cast

import numpy as np

import contract  # the console's events, named as contract.<Type> (Transcript, Retrieval are taken here)
from aipbx.audio.resample import StreamResampler, resample
from aipbx.providers.base import EndOfTurn, SpeechToText, TextToSpeech, Transcript, needed_by
from aipbx.providers.errors import ProviderError
from aipbx.text.guard import reply_splitter
from aipbx.text.prompt import Turn, system_prompt
from ariapp import metrics
from ariapp.conversation.answerer import Answerer, Question
from ariapp.conversation.confirm import CONFIRM_AT, Offer, offer_for, reply_to_offer, says_enough
from ariapp.conversation.hitl import (
    LOW_CONFIDENCE,
    Desk,
    HitlConfig,
    MessageTaker,
    Trigger,
    beep,
    hitl_trigger,
    hold_music,
)
from ariapp.conversation.machine import TRANSFERABLE, Cmd, Ev, State, step
from ariapp.conversation.spoken import spoken
from ariapp.conversation.transfer import MUSIC_CHUNK_S, TRANSFER_WAIT_S, hold_for_transfer
from ariapp.conversation.turns import BACKCHANNEL_HINTS, BACKCHANNEL_MAX_S, backchannel, should_wait
from ariapp.conversation.turns import HOLD_S as TURN_HOLD_S
from ariapp.media.audio import Speaker, SpeechHandle
from ariapp.tasks import cancel_and_wait
from knowledge.retrieval.terms import proper_names

log = logging.getLogger(__name__)

#: How long the answer waits, once the words are heard, for the end-of-turn model (busy with other
#: callers' turns); after that the words alone decide.
TURN_MODEL_WAIT_S = 0.2

FILLER = {"en": "One moment, please.", "ko": "잠시만 기다려 주세요."}
FALLBACK = {
    "en": "Sorry, I'm having trouble answering right now. {owner} will get back to you.",
    "ko": "죄송합니다. 지금은 답변드리기 어렵습니다. {owner}님이 다시 연락드리겠습니다.",
}


@dataclass
class TurnLog:
    t: float  # seconds since answer
    speaker: str  # caller | ai
    text: str
    interrupted: bool = False
    unspoken: str = ""  # the part of an interrupted reply that was never played
    latency_ms: dict[str, float] = field(default_factory=dict)
    retrieved: list[dict] = field(default_factory=list)


class Marks:
    """Latency marks of one turn, in ms after the end of the caller's speech."""

    def __init__(self, clock: Callable[[], float], origin: float) -> None:
        self._clock = clock
        self.origin = origin  # when the caller stopped talking
        self.detected_at = clock()  # when the end of the turn was decided
        self.model_s = 0.0  # time spent waiting on models (STT, embedding, first token, first audio)
        self.values: dict[str, float] = {}

    @contextlib.contextmanager
    def waiting_on_model(self):
        started = self._clock()
        try:
            yield
        finally:
            self.model_s += self._clock() - started

    def first_rtp(self, when: float) -> None:
        """The first reply frame left: record it and the pipeline's own overhead (no model time)."""
        self.at("first_rtp", when)
        self.values.setdefault("overhead", round((when - self.detected_at - self.model_s) * 1000, 1))
        self.values.setdefault("model", round(self.model_s * 1000, 1))

    def mark(self, name: str) -> None:
        self.at(name, self._clock())

    def at(self, name: str, when: float) -> None:
        if name not in self.values:
            self.values[name] = round((when - self.origin) * 1000, 1)


@dataclass(frozen=True)
class ConversationConfig:
    owner: str
    owner_key: str  # the extension whose knowledge is searched
    greeting_text: str = ""
    language: str = "en-US"
    filler_after_s: float = 2.0
    reply_timeout_s: float = 20.0
    confirm_at: float = CONFIRM_AT  # "did you mean …?" from this gate probability (confirm.py); 0: never
    # The extension's own hold messages ("" = the language's default, hitl.MESSAGES) and hold music
    # (None = the built-in tune; a function of the media rate and seconds, the volume already applied).
    hold_message: str = ""
    update_message: str = ""
    hold_music: Callable[[int, float], np.ndarray] | None = None

    @property
    def lang(self) -> str:
        return "ko" if self.language.startswith("ko") else "en"


class Retrieval(Protocol):
    """What the orchestrator needs from the knowledge base (``knowledge.retrieval.Retriever``):
    ``search`` returns a result whose ``passages`` have ``text``, ``score`` and, optionally,
    ``metadata`` with the knowledge ``item_id`` (reported to the console); ``judge`` says which of
    them answer the question (a ``Judgement``: ``answering``, ``probability``, ``answer_at``) —
    only those are ever spoken."""

    async def search(self, owner: str, query: str) -> Any: ...

    async def judge(self, question: str, passages: Any) -> Any: ...


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
        clock: Callable[[], float] = time.monotonic,
        publish: Callable[[contract.Event], None] | None = None,
        desk: Desk | None = None,
        hitl: HitlConfig | None = None,
        voicemail: MessageTaker | None = None,
        turn_model: EndOfTurn | None = None,
    ) -> None:
        self.config = config
        self.turn_model = turn_model  # None: the words alone decide whether the caller has finished
        self.desk = desk  # None: no human in the loop (the AI says it is not sure)
        self.hitl = hitl or HitlConfig()
        # None, or voicemail off: after the away/timeout message the conversation goes on
        self.voicemail = voicemail if self.hitl.voicemail else None
        self.hitl_requests = 0
        self.speaker = speaker
        self.rate = media_rate
        self.stt, self.tts, self.answerer, self.retriever = stt, tts, answerer, retriever
        self._greeting = greeting
        self._since_answer = since_answer
        self._publish = publish or (lambda event: None)
        self._clock = clock
        self.state = State.IDLE
        self.turns: list[TurnLog] = []
        self._told: set[int] = set()  # ids of the AI turns published as played (each once)
        self._events: asyncio.Queue[tuple[Ev, object]] = asyncio.Queue()
        self._reply: asyncio.Task | None = None
        self._speech: SpeechHandle | None = None
        self._kept_audio: np.ndarray | None = None  # a question the caller has not finished yet
        self._open_question: TurnLog | None = None  # its transcript, replaced when it continues
        self._speculative: tuple[int, asyncio.Task] | None = None  # (samples, STT task) from a pause
        self._ahead: tuple[str, asyncio.Task] | None = None  # (text, retrieval task) of the pause's transcript
        self._check: asyncio.Future | None = None  # is what was said over our reply a backchannel?
        self._heard_over: tuple[np.ndarray, Transcript] | None = None  # what it said, if not one
        self._offered: Offer | None = None  # "did you mean …?" asked: the caller's next words answer it
        self._hints: list[str] = []  # names in the callee's knowledge, for the recogniser (_prepare_knowledge)
        self.offers = 0
        self.barge_ins = 0
        self._transfer: asyncio.Future[bool] | None = None  # putting the caller through: did the person take them?

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
        """The caller paused: start recognising now, in case the turn is over.

        At most one speculative recognition runs: the recogniser works on one thread, and a
        cancelled asyncio task does not stop the thread, so stale jobs would delay the real one.
        None starts while the recogniser is busy (``stt.busy``: other callers' jobs queued or
        running): a guess that may be thrown away must never make another caller's answer wait; it
        pays only on an idle recogniser.
        """
        if self._speculative is not None and not self._speculative[1].done():
            return
        if self.state is State.VOICEMAIL:
            return  # a message is being left: nothing it says is answered
        if getattr(self.stt, "busy", False):
            return
        task = asyncio.ensure_future(self._transcribe(pcm_so_far, interim=True))
        self._speculative = (len(pcm_so_far), task)
        task.add_done_callback(self._retrieve_ahead)

    def _retrieve_ahead(self, task: asyncio.Task) -> None:
        """The pause's transcript is in: search the knowledge for it now. When the caller said nothing
        more it is the question, and the answer does not wait for the search and the gate's models."""
        if task.cancelled() or task.exception() is not None or self.retriever is None:
            return
        text = task.result().text.strip()
        if not text or (self._ahead is not None and not self._ahead[1].done()):
            return  # one search ahead at a time, like one speculative recognition
        self._ahead = (text, asyncio.ensure_future(self._retrieve(text)))

    async def _retrieve_for(self, question: str) -> tuple[list[Any], Any | None]:
        """The search for ``question``: the one started at the pause if it was for the same words."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == question:
            return await ahead[1]
        if ahead is not None:
            ahead[1].cancel()
        return await self._retrieve(question)

    # --- main loop ---------------------------------------------------------------------------------
    async def run(self) -> None:
        self.post(Ev.ANSWERED)
        # the callee's knowledge gets ready while the greeting plays (its first question then waits on nothing)
        preparing = asyncio.ensure_future(self._prepare_knowledge())
        try:
            while self.state is not State.ENDED:
                event, payload = await self._events.get()
                previous = self.state
                self.state, commands = step(self.state, event)
                if self.state is not previous:
                    self._publish(contract.ConversationState(state=self.state.value))
                for command in commands:
                    self._execute(command, event, payload)
        finally:
            preparing.cancel()
            await self._cancel_reply()
            for turn in self.turns:  # e.g. a reply cut off while it was synthesised: the console hears of it too
                if turn.speaker == "ai" and turn.text:
                    self._played(turn)
            if self._speculative is not None:
                self._speculative[1].cancel()
            if self._ahead is not None:
                self._ahead[1].cancel()
            if self._check is not None:
                self._check.cancel()

    def _execute(self, command: Cmd, event: Ev, payload: object) -> None:
        if command is Cmd.PLAY_GREETING:
            self._start(self._say_greeting())
        elif command is Cmd.START_REPLY:
            utterance, ended_at = cast("tuple[np.ndarray, float]", payload)  # the utterance: (pcm, ended_at)
            self._start(self._answer(utterance, ended_at))
        elif command is Cmd.CANCEL_REPLY:
            self._stop_speaking(barge_in=event in (Ev.CALLER_ONSET, Ev.INTERRUPTION))
        elif command is Cmd.PAUSE_REPLY:
            self.speaker.pause()
        elif command is Cmd.RESUME_REPLY:
            self.speaker.resume()
        elif command is Cmd.CHECK_BACKCHANNEL:
            if self._check is not None and not self._check.done():
                self._check.cancel()  # the caller said more before we decided: the latest utterance decides
            self._check = asyncio.ensure_future(self._check_backchannel(payload))
        elif command is Cmd.KEEP_QUESTION:
            pass  # _answer() keeps the question's audio in _kept_audio until our answer plays
        elif command is Cmd.START_TRANSFER and self._transfer is not None:
            settled = self._transfer
            self._start(
                hold_for_transfer(
                    operator=str(payload or ""),
                    language=self.config.language,
                    settled=settled,
                    say=self._say,
                    music_until=lambda done: self._play_music_until(self._clock() + MUSIC_CHUNK_S, done),
                    post=self.post,
                )
            )
        elif command is Cmd.SAY_FALLBACK:
            self._start(self._say(FALLBACK[self.config.lang].format(owner=self.config.owner)))

    async def _check_backchannel(self, payload: object) -> None:
        """What the caller said over our paused reply: a backchannel resumes it, anything else ends it."""
        utterance, _ = cast("tuple[np.ndarray, float]", payload)
        said = None
        if len(utterance) / self.rate <= BACKCHANNEL_MAX_S:
            try:
                heard = await self._transcribe(utterance)
                self._heard_over = (utterance, heard)  # an interruption's reply starts from it
                said = heard.text
                if not backchannel(said) and reply_to_offer(said, self.config.lang)[0] is None:
                    # A hum is heard as words ("mm-hmm" as "in a month"): listen again expecting one.
                    # A real interruption keeps its words ("What about Sunday?"), so it still stops us.
                    again = (await self._transcribe(utterance, hints=BACKCHANNEL_HINTS[self.config.lang])).text
                    if backchannel(again):
                        log.info("%r heard again as %r, a backchannel", said, again)
                        said = again
            except ProviderError as exc:
                log.warning("could not hear what was said over the reply: %r", exc)
        if said is not None and self._offered is not None and reply_to_offer(said, self.config.lang)[0] is not None:
            self.post(Ev.INTERRUPTION, payload)  # "yes" over "Just to check, …?" answers it: no backchannel
        elif said is not None and backchannel(said):
            log.info("backchannel %r: the reply goes on", said)
            self.post(Ev.BACKCHANNEL)
        else:
            self.post(Ev.INTERRUPTION, payload)

    def _start(self, coro) -> None:
        previous = self._reply
        if previous is not None and not previous.done():
            previous.cancel()
        self._reply = asyncio.ensure_future(coro)

    def _stop_speaking(self, *, barge_in: bool) -> None:
        cut = self.speaker.stop()
        if barge_in and cut:
            self.barge_ins += 1
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()

    async def _cancel_reply(self) -> None:
        await cancel_and_wait(self._reply, 2.0)

    # --- speaking ----------------------------------------------------------------------------------
    async def _say_greeting(self) -> None:
        text = self.config.greeting_text
        turn = self._log("ai", text)
        pcm = await self._greeting()
        handle = self.speaker.start(text)
        self._announce(handle, turn, [text])
        self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await self._finish_speech(handle, turn, [text], [handle.frames_total])

    async def _say(self, text: str) -> None:
        turn = self._log("ai", text)
        handle = self.speaker.start(text)
        self._announce(handle, turn, [text])
        async for pcm in self._synthesize(text):
            self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await self._finish_speech(handle, turn, [text], [handle.frames_total])

    def _announce(self, handle: SpeechHandle, turn: TurnLog, pieces: list[str]) -> None:
        """Publish the reply so far when the audio pushed next (its newest piece) starts to play."""
        event = contract.ReplySpeaking(t=turn.t, text=" ".join(pieces))
        self.speaker.cue(handle, lambda: self._publish(event))

    async def _synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """``text`` as audio at the call's rate; the voice reads its spoken form (numbers, names)."""
        resampler = StreamResampler(self.tts.sample_rate, self.rate)
        async for chunk in self.tts.synthesize(spoken(text, self.config.language, (self.config.owner,))):
            yield resampler.process(chunk)
        tail = resampler.flush()
        if len(tail):
            yield tail

    async def _finish_speech(
        self, handle: SpeechHandle, turn: TurnLog, pieces: list[str], piece_ends: list[int]
    ) -> None:
        try:
            await handle.done.wait()
        finally:
            _mark_unspoken(turn, handle, pieces, piece_ends)
            self._played(turn)
        if not handle.interrupted:
            self.post(Ev.SPEECH_DONE)

    # --- answering ---------------------------------------------------------------------------------
    async def _answer(self, utterance: np.ndarray, ended_at: float) -> None:
        marks = Marks(self._clock, ended_at)
        replacing: TurnLog | None = None
        continued = self._kept_audio is not None
        if continued:
            # The caller went on talking before we answered: hear both parts as one question, whose
            # transcript replaces the first part's once it is heard (until then the first part stands).
            utterance = np.concatenate([self._kept_audio, utterance])
            replacing = self._open_question
        self._kept_audio = utterance  # until our answer starts playing (then the turn is over)
        # How the words end, judged while they are recognised (~50 ms on a thread of its own). Not
        # again once the caller went on after a pause: the model hears the pause in the joined audio
        # and would hold a finished question a second time (measured: 0.04 for "I wanted to ask about
        # the [0.8 s] parking, is there any?").
        ending = None
        if self.turn_model is not None and not continued:
            ending = asyncio.ensure_future(self._turn_complete(utterance))
        filler = asyncio.ensure_future(self._filler_after(self.config.filler_after_s))
        reply: _Reply | None = None
        trigger: Trigger | None = None
        try:
            # The budget covers producing the answer, not playing it.
            async with asyncio.timeout(self.config.reply_timeout_s):
                with marks.waiting_on_model():
                    transcript = await self._transcript_for(utterance, combined=self._open_question is not None)
                marks.mark("stt_final")
                question = transcript.text.strip()
                if not question:
                    self._kept_audio = None
                    self.post(Ev.REPLY_EMPTY)
                    return
                complete = await _ready(ending, TURN_MODEL_WAIT_S) if ending is not None else None
                if complete is not None:
                    marks.values["turn_complete"] = round(complete, 3)
                if should_wait(question, self.config.language, complete):
                    # "Could you tell me, um," is not a question yet: give the caller a moment to go
                    # on (their next onset cancels this reply and keeps the audio; turns.py).
                    with marks.waiting_on_model():  # a deliberate wait, not the pipeline's overhead
                        await asyncio.sleep(TURN_HOLD_S)
                    marks.values["turn_hold"] = round(TURN_HOLD_S * 1000, 1)
                turn_in = self._log("caller", question, at=self._since_answer() - (self._clock() - ended_at))
                turn_in.latency_ms = marks.values  # the same dict: filled in as the turn goes on
                replaces = None
                if replacing is not None and replacing in self.turns:
                    self.turns.remove(replacing)
                    replaces = replacing.t
                self._open_question = turn_in
                self._publish(
                    contract.Transcript(speaker="caller", text=question, final=True, t=turn_in.t, replaces=replaces)
                )
                offered, self._offered = self._offered, None
                agreed, rest = reply_to_offer(question, self.config.lang) if offered else (None, question)
                if agreed is None or says_enough(rest):
                    # a question of its own ("No, I meant the crowns.", "Yes, and after two hours?"):
                    # the gate judges it; a yes with more to it is not a yes to the passage alone
                    offered = None
                    asked = question if agreed is None else rest
                    with marks.waiting_on_model():
                        candidates, judgement = await self._retrieve_for(asked)
                    marks.mark("retrieval")
                    answering = judgement.answering if judgement is not None else []
                    confidence = float(judgement.probability) if judgement is not None and candidates else None
                    turn_in.retrieved = _retrieved(candidates, judgement)
                else:  # the caller answered "did you mean …?": yes, that passage; no, nothing
                    assert offered is not None
                    asked, candidates, judgement = offered.question, [offered.passage], None
                    answering = [offered.passage] if agreed else []
                    confidence = offered.probability
                    turn_in.retrieved = [{**_retrieved(candidates, None)[0], "p": round(confidence, 3), "used": agreed}]
                self._publish(
                    contract.Retrieval(
                        question=asked,
                        results=turn_in.retrieved,
                        t=turn_in.t,
                        confidence=None if confidence is None else round(confidence, 3),
                    )
                )
                if offered is None:
                    trigger = self._human_needed(asked, confidence, judgement)
                    offer = None
                    if not answering and (trigger is None or trigger.reason == LOW_CONFIDENCE):
                        offer = offer_for(asked, judgement, self.config.lang, self.config.confirm_at)
                    if offer is not None:
                        trigger = None  # check with the caller before asking a person
                else:
                    offer = None
                    trigger = None if agreed else self._human_needed(asked, None, None)
                if trigger is None:
                    reply = _Reply()
                    await self._generate(
                        Question(
                            asked,
                            self.config.owner,
                            self.config.language,
                            [p.text for p in answering],
                            confidence or 0.0,
                            self._history(),
                        ),
                        marks,
                        filler,
                        reply,
                        said=None if offer is None else offer.text,
                    )
                    if offer is not None and reply.handle is not None:
                        self._offered = offer
                        self.offers += 1
            if trigger is not None:
                filler.cancel()
                await self._ask_human(asked, trigger, turn_in, confidence)
                return
            assert reply is not None  # made above when no human was needed
            if reply.handle is None:
                self.post(Ev.REPLY_EMPTY)
                return
            assert reply.turn is not None  # made with the handle
            await self._finish_speech(reply.handle, reply.turn, reply.pieces, reply.piece_ends)
            log.info("turn latency (ms after end of speech): %s", marks.values)
        except (ProviderError, TimeoutError) as exc:
            log.warning("reply failed: %r", exc)
            self.post(Ev.PROVIDER_FAILED, exc)
        finally:
            filler.cancel()
            if ending is not None:
                ending.cancel()
            if reply is not None:
                reply.close(self.speaker, marks)
                if reply.turn is not None and reply.turn.text:
                    self._played(reply.turn)  # a no-op after _finish_speech; else cut off before it finished arriving
                self._publish(contract.Latency(dict(marks.values)))

    async def _generate(
        self, question: Question, marks: Marks, filler: asyncio.Future, reply: _Reply, said: str | None = None
    ) -> None:
        """Stream the answer into the speaker, piece by piece, as fast as text and audio arrive.

        ``said``: a reply already written (the "did you mean …?" check) instead of the answerer's.
        """
        # Every piece passes the output guard before TTS (guard.py): no prompt leaks, markup or actions.
        splitter = reply_splitter(
            system_prompt(question.owner_name, question.language),
            question.owner_name,
            [*question.passages, *([said] if said else [])],
            FALLBACK[self.config.lang].format(owner=self.config.owner),
            heard=[question.text, *(turn.text for turn in question.history)],
        )

        async def speak_piece(piece: str) -> None:
            requested = self._clock()
            announced = False
            # When the caller hears silence without this piece (a shared voice serves the earliest
            # first): the first since they stopped talking, a later one when what is queued runs out.
            if reply.handle is None:
                deadline = marks.origin
            else:
                deadline = requested + reply.handle.seconds_left
            with needed_by(deadline):
                async for pcm in self._synthesize(piece):
                    if reply.handle is None:
                        filler.cancel()
                        marks.model_s += self._clock() - requested
                        marks.mark("tts_first_audio")
                        reply.handle = self.speaker.start(piece)
                        reply.turn = self._log("ai", "")
                        self._kept_audio = None  # we are answering: this question is settled
                        self._open_question = None
                        self.post(Ev.REPLY_AUDIO)
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

        requested = self._clock()
        async for delta in self.answerer.answer(question) if said is None else _once(said):
            if "llm_first_token" not in marks.values:
                marks.model_s += self._clock() - requested
            marks.mark("llm_first_token")
            for piece in splitter.push(delta):
                await speak_piece(piece)
        for piece in splitter.flush():
            await speak_piece(piece)
        if reply.handle is not None:
            self.speaker.finish(reply.handle)

    async def _filler_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.speaker.speaking:
            return
        text = FILLER[self.config.lang]
        handle = self.speaker.start(text)
        try:
            async for pcm in self._synthesize(text):
                self.speaker.push(handle, pcm)
        finally:
            # Cancelled half-way (the answer arrived): what was queued plays out, nothing blocks.
            self.speaker.finish(handle)
        if handle.frames_total:
            self._played(self._log("ai", text))

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
        self, pcm: np.ndarray, interim: bool = False, hints: Sequence[str] | None = None
    ) -> Transcript:
        """What ``pcm`` says; ``hints``: what to expect (default: the callee's names)."""
        audio = resample(pcm, self.rate, self.stt.sample_rate)
        transcript = await self.stt.transcribe(audio, self.config.lang, self._hints if hints is None else hints)
        if interim and transcript.text:  # what we heard so far, shown live before the turn is over
            self._publish(
                contract.Transcript(
                    speaker="caller", text=transcript.text, final=False, t=round(self._since_answer(), 2)
                )
            )
        return transcript

    async def _turn_complete(self, utterance: np.ndarray) -> float | None:
        """The end-of-turn model's probability that ``utterance`` ends the turn; None when it failed
        (the words alone decide then: a model must never cost the caller an answer)."""
        assert self.turn_model is not None
        try:
            return await self.turn_model.complete(resample(utterance, self.rate, self.turn_model.sample_rate))
        except Exception as exc:  # noqa: BLE001 - whatever broke, the caller is answered
            log.warning("end-of-turn model failed, the words decide: %r", exc)
            return None

    async def _prepare_knowledge(self) -> None:
        """Get the callee's knowledge ready for the first question, and tell the recogniser the names
        in it ("Dr. Minsu Park", "Chuseok"): a caller who says them is heard, not "men's who park"."""
        prepare = getattr(self.retriever, "prepare", None)
        if prepare is None:
            return
        try:
            passages = await prepare(self.config.owner_key)
        except Exception as exc:  # noqa: BLE001 - only a head start: the first question searches as usual
            log.warning("could not prepare the knowledge of %s: %r", self.config.owner_key, exc)
            return
        self._hints = proper_names([passage.text for passage in passages])

    async def _retrieve(self, question: str) -> tuple[list[Any], Any | None]:
        """The callee's passages nearest the question (best first) and the verdict on which answer it."""
        if self.retriever is None:
            return [], None
        try:
            result = await self.retriever.search(self.config.owner_key, question)
            return list(result.passages), await self.retriever.judge(question, result.passages)
        except Exception as exc:  # the knowledge base down must not take the call down
            log.warning("knowledge search failed, answering without it: %r", exc)
            return [], None

    # --- human in the loop -------------------------------------------------------------------------
    def _human_needed(self, question: str, confidence: float | None, judgement: Any | None) -> Trigger | None:
        if self.desk is None:
            return None
        floor = float(judgement.answer_at) if judgement is not None else 1.0
        return hitl_trigger(question, confidence, floor, self.hitl)

    def _message(self, name: str) -> Any:
        own = {"checking": self.config.hold_message, "updates": self.config.update_message}.get(name)
        if own:  # the extension's own words (console settings)
            text = own.replace("{owner}", self.config.owner)
            return (text,) if name == "updates" else text
        messages = self.hitl.messages.get(self.config.lang) or self.hitl.messages["en"]
        value = messages[name]
        return value.format(owner=self.config.owner) if isinstance(value, str) else value

    async def _ask_human(self, question: str, trigger: Trigger, turn_in: TurnLog, confidence: float | None) -> None:
        """Ask the console for a person's answer; hold the caller meanwhile (or say we are away)."""
        assert self.desk is not None
        request_id = uuid.uuid4().hex
        self.hitl_requests += 1
        self._kept_audio = None  # the question is settled: a person has it
        self._open_question = None
        self._publish(
            contract.HitlRequested(
                request_id=request_id,
                question=question,
                reason=trigger.reason,
                detail=trigger.detail,
                confidence=confidence,
                retrieved=turn_in.retrieved,
                recent_turns=[{"speaker": t.speaker, "text": t.text} for t in self.turns[-7:-1] if t.text],
                callee=self.config.owner_key,
                language=self.config.language,
            )
        )
        try:
            decision = await self.desk.reply(request_id, self.hitl.decision_s)
            if decision is not None and decision.get("kind") == "transfer":
                # the console sent the call session a transfer request too: it cancels this task
                log.info("HITL %s: putting the caller through to %s", request_id, decision.get("operator", "?"))
                await asyncio.sleep(TRANSFER_WAIT_S)
                decision = None  # the request never reached the call: nobody after all
        except asyncio.CancelledError:
            if self._transfer is not None:  # an operator took the call before the hold began
                self._publish(contract.HitlCancelled(request_id=request_id, why="transfer"))
            raise
        if decision is None or decision.get("kind") != "queued":
            log.info("HITL %s: nobody available (%s)", request_id, (decision or {}).get("kind", "no answer"))
            metrics.hitl_outcome("away")
            if self.voicemail is not None:
                await self._take_message(request_id, "away", self._message("away"))
                return
            self.post(Ev.HUMAN_REPLY)
            await self._say(self._message("away"))
            return
        log.info(
            "HITL %s (%s): queued for %s operator(s), caller on hold",
            request_id,
            trigger.reason,
            decision.get("operators", "?"),
        )
        self.post(Ev.HOLD)
        try:
            answer = await self._hold(request_id)
        except asyncio.CancelledError:
            why = "transfer" if self._transfer is not None else "caller_hangup"
            self._publish(contract.HitlCancelled(request_id=request_id, why=why))
            raise
        log.info("HITL %s: %s", request_id, "hold limit reached" if answer is None else "answer received")
        if answer is None:
            self._publish(contract.HitlTimeout(request_id=request_id))
            if self.voicemail is not None:
                await self._take_message(request_id, "timeout", self._message("timeout"))
                return
            self.post(Ev.HUMAN_REPLY)
            await self._say(self._message("timeout"))
            return
        self.post(Ev.HUMAN_REPLY)
        self._publish(contract.HitlSpoken(request_id=request_id, text=answer))
        await self._say(answer)

    async def _take_message(self, request_id: str, reason: str, apology: str) -> None:
        """Nobody answered: say so, ask for a message, beep, record it, thank the caller and end the call.

        The caller's hang-up cancels this task; the session keeps the message recorded so far.
        """
        assert self.voicemail is not None
        self.post(Ev.VOICEMAIL)
        await self._say(f"{apology} {self._message('voicemail')}")
        await self._play(beep(self.rate), "(tone)")
        ended = await self.voicemail.take_message(request_id, reason)
        log.info("voicemail for HITL %s (%s) ended: %s", request_id, reason, ended)
        await self._say(self._message("voicemail_end"))
        self.post(Ev.FINISHED)

    async def _play(self, pcm: np.ndarray, label: str) -> None:
        handle = self.speaker.start(label)
        self.speaker.push(handle, pcm)
        self.speaker.finish(handle)
        await handle.done.wait()

    async def _hold(self, request_id: str) -> str | None:
        """Hold music with spoken updates until the operator's answer arrives or the hold limit passes."""
        assert self.desk is not None
        started = self._clock()
        answer = asyncio.ensure_future(self._wait_for_answer(request_id, started + self.hitl.hold_s))
        try:
            await self._say(self._message("checking"))
            updates = list(self._message("updates"))
            milestones = [s for s in self.hitl.updates_s if s < self.hitl.hold_s] + [self.hitl.hold_s]
            for index, until in enumerate(milestones):
                if answer.done():
                    break
                await self._play_music_until(started + until, answer)
                if answer.done() or until >= self.hitl.hold_s:
                    break
                await self._say(updates[min(index, len(updates) - 1)])
            if not answer.done() or answer.cancelled() or answer.exception() is not None:
                return None
            return answer.result()
        finally:
            await cancel_and_wait(answer)

    async def _wait_for_answer(self, request_id: str, deadline: float) -> str | None:
        assert self.desk is not None
        while (left := deadline - self._clock()) > 0:
            reply = await self.desk.reply(request_id, min(left, 5.0))
            if reply and reply.get("kind") == "answer" and str(reply.get("text", "")).strip():
                return str(reply["text"]).strip()
        return None

    async def _play_music_until(self, deadline: float, answer: asyncio.Future) -> None:
        seconds = deadline - self._clock()
        if seconds <= 0:
            return
        handle = self.speaker.start("(hold music)")
        music = self.config.hold_music or hold_music
        self.speaker.push(handle, music(self.rate, seconds))
        self.speaker.finish(handle)
        played = asyncio.ensure_future(handle.done.wait())
        try:
            await asyncio.wait({played, answer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            played.cancel()
            if not handle.done.is_set():
                self.speaker.stop()  # the answer is here: the music stops on the next frame

    # --- transcript --------------------------------------------------------------------------------
    def _log(self, speaker: str, text: str, at: float | None = None) -> TurnLog:
        turn = TurnLog(round(self._since_answer() if at is None else max(at, 0.0), 3), speaker, text)
        self.turns.append(turn)
        return turn

    def _played(self, turn: TurnLog) -> None:
        """Tell the console an AI turn was played, as it was heard (once per turn): the console's
        transcript then holds every turn of :meth:`report` that has words."""
        if id(turn) not in self._told:
            self._told.add(id(turn))
            self._publish(contract.TurnPlayed(**asdict(turn)))

    def _history(self) -> list[Turn]:
        return [Turn(t.speaker, t.text) for t in self.turns[:-1] if t.text]

    def report(self) -> list[dict]:
        return [asdict(t) for t in self.turns]


@dataclass
class _Reply:
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
            _mark_unspoken(self.turn, self.handle, self.pieces, self.piece_ends)
        if self.handle.started_at is not None:  # set by the media tick that sent the first frame
            marks.first_rtp(self.handle.started_at)


def _mark_unspoken(turn: TurnLog, handle: SpeechHandle, pieces: list[str], piece_ends: list[int]) -> None:
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


async def _ready(task: asyncio.Future, seconds: float) -> Any:
    """``task``'s result if it is done within ``seconds``, else None (it is left running)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return task.result() if done else None


async def _once(text: str) -> AsyncIterator[str]:
    yield text


def _retrieved(candidates: list[Any], judgement: Any | None) -> list[dict[str, Any]]:
    """What the console shows of a search: each passage, its score, and the gate's verdict on it."""
    verdict = {id(c[0]): c[1] for c in (judgement.candidates if judgement is not None else [])}
    answering = {id(p) for p in (judgement.answering if judgement is not None else [])}
    return [
        {
            "text": p.text[:200],
            "score": round(float(p.score), 3),
            "item_id": (getattr(p, "metadata", None) or {}).get("item_id"),
            **({"p": round(verdict[id(p)], 3)} if id(p) in verdict else {}),
            "used": id(p) in answering,
        }
        for p in candidates
    ]
