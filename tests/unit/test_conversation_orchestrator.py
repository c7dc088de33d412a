"""Whole-call tests of ariapp.conversation.orchestrator: a real Orchestrator and a real Speaker, fake
providers, and a media clock that pulls one frame per tick (ten times faster than real time: the tests'
hold, filler and audio lengths are scaled to it), all on virtual time (tests/virtual_time.py): the
call's clock is the loop's, which jumps from timer to timer, so a test sees the same order and spacing
of events on every run, in milliseconds of wall time, however loaded the machine is.

Every fake TTS sentence is a constant-level chunk, so the frames that came out of the speaker tell which
sentence the caller heard, in which order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

import contract
from aipbx.providers.base import Transcript, speech_deadline
from aipbx.providers.errors import ProviderError
from ariapp.conversation.answerer import ExtractiveAnswerer, Question
from ariapp.conversation.frames import Utterance
from ariapp.conversation.machine import Ev, State
from ariapp.conversation.options import ConversationConfig, Timing
from ariapp.conversation.orchestrator import FALLBACK, Orchestrator
from ariapp.media.audio import Speaker, SpeechHandle
from knowledge.retrieval.relevance import Judgement
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

RATE = 8000
FRAME = 160
TICK_S = 0.002  # one 20 ms media frame every 2 ms: audio plays ten times faster than real time
GREETING = "Hello, you have reached Mr Kim's phone."
GREETING_LEVEL = 7
OWNER = "Mr Kim"


def now() -> float:
    """The call's clock: the running loop's (virtual time)."""
    return asyncio.get_running_loop().time()


def speech(seconds: float, level: int = 3000) -> np.ndarray:
    """Stand-in for the caller's audio (the fake STT never listens to it)."""
    return np.full(int(RATE * seconds), level, dtype=np.int16)


class FakeSTT:
    """Answers call number i with ``results[i]`` (the last one repeats) after ``delay`` seconds."""

    sample_rate = 16000

    def __init__(self, *results: str | Exception, delay: float = 0.0) -> None:
        self.results = results
        self.delay = delay
        self.calls: list[int] = []  # samples received, per call
        self.hints: list[list[str]] = []  # the names it was told to expect, per call

    async def transcribe(self, pcm: np.ndarray, language: str | None = None, hints=()) -> Transcript:
        result = self.results[min(len(self.calls), len(self.results) - 1)]
        self.calls.append(len(pcm))
        self.hints.append(list(hints))
        await asyncio.sleep(self.delay)
        if isinstance(result, Exception):
            raise result
        return Transcript(result, "en", True, 0.9, len(pcm) / self.sample_rate, self.delay)


class FakeTTS:
    """One chunk of ``ms`` per sentence, at a level unique to that sentence, after a delay."""

    sample_rate = RATE

    def __init__(
        self, ms: int = 200, delay: float = 0.0, delays: dict[str, float] | None = None, fail_on: str | None = None
    ) -> None:
        self.ms, self.delay, self.delays, self.fail_on = ms, delay, delays or {}, fail_on
        self.texts: list[str] = []
        self.levels: dict[int, str] = {GREETING_LEVEL: "greeting"}
        self.needed: dict[str, tuple[float | None, float]] = {}  # text: (its deadline, when it was asked for)

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        self.texts.append(text)
        self.needed[text] = (speech_deadline.get(), now())
        level = 1000 + 50 * len(self.texts)
        self.levels[level] = text
        await asyncio.sleep(self.delays.get(text, self.delay))
        if text == self.fail_on:
            raise ProviderError("tts crashed", provider="fake")
        yield np.full(RATE * self.ms // 1000, level, dtype=np.int16)

    async def synthesize_all(self, text: str) -> np.ndarray:
        return np.concatenate([chunk async for chunk in self.synthesize(text)])


class ScriptedAnswerer:
    """Answer number i streams ``scripts[i]`` (the last one repeats); ``None`` in a script waits for
    ``gate``; ``first_delay`` passes before the first delta."""

    def __init__(self, *scripts: list[str | None], first_delay: float = 0.0) -> None:
        self.scripts = scripts
        self.first_delay = first_delay
        self.gate = asyncio.Event()
        self.questions: list[Question] = []
        self.cancelled = False

    async def answer(self, question: Question) -> AsyncIterator[str]:
        script = self.scripts[min(len(self.questions), len(self.scripts) - 1)]
        self.questions.append(question)
        try:
            await asyncio.sleep(self.first_delay)
            for delta in script:
                if delta is None:
                    await self.gate.wait()
                else:
                    yield delta
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@dataclass
class Passage:
    text: str
    score: float
    metadata: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    passages: list[Passage]


class FakeRetriever:
    threshold = 0.3

    def __init__(self, *passages: Passage, delay: float = 0.0) -> None:
        self.passages = list(passages)
        self.delay = delay
        self.queries: list[tuple[str, str]] = []
        self.judged: list[tuple[str, str | None, str]] = []  # (question, owner, business) of each judge

    async def prepare(self, owner: str) -> list[Passage]:
        return self.passages

    async def search(self, owner: str, query: str) -> SearchResult:
        self.queries.append((owner, query))
        await asyncio.sleep(self.delay)
        return SearchResult(self.passages)

    async def judge(
        self, question: str, passages: list[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        """The threshold rule (what a Retriever without its gate decides)."""
        self.judged.append((question, owner, business))
        best = max(passages, key=lambda p: p.score, default=None)
        score = best.score if best is not None else 0.0
        chosen = best if best is not None and score >= self.threshold else None
        return Judgement(chosen, score, answer_at=self.threshold)


class RecordingSpeaker(Speaker):
    """The real Speaker, remembering every handle it gave out."""

    def __init__(self) -> None:
        super().__init__(FRAME, now)
        self.handles: list[SpeechHandle] = []

    def start(self, text: str) -> SpeechHandle:
        handle = super().start(text)
        self.handles.append(handle)
        return handle

    def handle(self, text: str) -> SpeechHandle | None:
        return next((h for h in self.handles if h.text == text), None)


def _with_timing(config: dict) -> dict:
    """``Call(reply_timeout_s=0.15, confirm_at=0.3)``: the waits go to the config's Timing."""
    waits = {name: config.pop(name) for name in list(config) if name in Timing.__dataclass_fields__}
    return {**config, "timing": Timing(**waits)} if waits else config


class Call:
    """One conversation: orchestrator, media clock, and helpers to drive it like ``AiCall`` does."""

    def __init__(
        self,
        *,
        stt: FakeSTT | None = None,
        tts: FakeTTS | None = None,
        answerer=None,
        retriever: FakeRetriever | None = None,
        wait_for_greeting: bool = True,
        turn_model=None,
        relisten_stt: FakeSTT | None = None,
        **config,
    ) -> None:
        # scripted transcripts answer recognitions in order: a second listen would take the next one
        config.setdefault("relisten", False)
        self.stt = stt or FakeSTT("When do you open?")
        self.tts = tts or FakeTTS()
        self.answerer = answerer or ExtractiveAnswerer()
        self.retriever = retriever
        self.speaker = RecordingSpeaker()
        self.played: list[int] = []  # level of every frame sent
        self.hold: Callable[[], bool] = lambda: False  # while true, the media clock sends nothing
        self.published: list[contract.Event] = []  # what the console would be told, in order
        self._t0 = now()
        self.orchestrator = Orchestrator(
            config=ConversationConfig(owner=OWNER, owner_key="201", greeting_text=GREETING, **_with_timing(config)),
            speaker=self.speaker,
            media_rate=RATE,
            stt=self.stt,
            tts=self.tts,
            answerer=self.answerer,
            retriever=retriever,
            greeting=self._greeting,
            since_answer=lambda: now() - self._t0,
            clock=now,
            publish=self.published.append,
            turn_model=turn_model,
            relisten_stt=relisten_stt,
        )
        self.wait_for_greeting = wait_for_greeting
        self.run: asyncio.Task | None = None
        self._clock: asyncio.Task | None = None

    async def _greeting(self) -> np.ndarray:
        return np.full(RATE // 5, GREETING_LEVEL, dtype=np.int16)

    async def _tick(self) -> None:
        while True:
            if not self.hold():
                frame = self.speaker.next_frame()
                if frame is not None:
                    self.played.append(int(frame[0]))
            await asyncio.sleep(TICK_S)

    async def __aenter__(self) -> Call:
        self.run = asyncio.ensure_future(self.orchestrator.run())
        self._clock = asyncio.ensure_future(self._tick())
        if self.wait_for_greeting:
            await self.until(lambda: self.state is State.LISTENING)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.run is not None and self._clock is not None
        self.orchestrator.post(Ev.HANGUP)
        try:
            await asyncio.wait_for(self.run, 2.0)
        finally:
            self._clock.cancel()
            await asyncio.gather(self._clock, return_exceptions=True)
        # whatever the test did, the console heard of the transcript the call keeps (unless the test
        # took the events elsewhere)
        if exc_info[0] is None and self.orchestrator.context.publish == self.published.append:
            kept = [(t["speaker"], t["t"], t["text"]) for t in self.orchestrator.report() if t["text"].strip()]
            assert console_transcript(self.published) == sorted(kept)

    @property
    def state(self) -> State:
        return self.orchestrator.state

    def heard(self) -> list[str]:
        """The sentences the caller heard, in order (each once per stretch of frames)."""
        texts = [self.tts.levels.get(level, "?") for level in self.played]
        return [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t]

    def speaking(self) -> list[str]:
        """The texts of the ``reply.speaking`` events so far."""
        return [e.text for e in self.published if isinstance(e, contract.ReplySpeaking)]

    def ai_texts(self) -> list[str]:
        return [t.text for t in self.orchestrator.turns if t.speaker == "ai"]

    def say(self, pcm: np.ndarray | None = None) -> None:
        """The listener reports an utterance that ended just now."""
        self.orchestrator.post(Ev.UTTERANCE, Utterance(speech(1.0) if pcm is None else pcm, now()))

    async def until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        deadline = now() + timeout
        while not predicate():
            if now() > deadline:
                raise AssertionError(f"timed out; state={self.state}, turns={self.orchestrator.turns}")
            await asyncio.sleep(0.001)


def console_transcript(published: list[contract.Event]) -> list[tuple[str, float, str]]:
    """The turns with words the console stores from ``published`` (webconsole.calls.ingest), in time order."""
    turns: list[tuple[str, float, str]] = []
    for event in published:
        if isinstance(event, contract.Transcript) and event.final:
            if event.replaces is not None:
                turns = [t for t in turns if (t[0], t[1]) != (event.speaker, event.replaces)]
            turns.append((event.speaker, event.t, event.text))
        elif isinstance(event, contract.TurnPlayed):
            turns.append((event.speaker, event.t, event.text))
    return sorted(turn for turn in turns if turn[2].strip())


OPENING = Passage("We open at nine on weekdays", 0.82, {"item_id": 7})
PARKING = Passage("Parking is behind the shop.", 0.41)
UNRELATED = Passage("The owner likes jazz.", 0.12)


async def test_greeting_is_played_first_and_logged_as_an_ai_turn() -> None:
    async with Call() as call:
        assert call.heard() == ["greeting"]
        assert call.played.count(GREETING_LEVEL) == 10  # 200 ms of greeting
        [greeting] = call.orchestrator.turns
        assert (greeting.speaker, greeting.text, greeting.interrupted) == ("ai", GREETING, False)


async def test_an_utterance_is_logged_with_transcript_passages_scores_and_ordered_latency() -> None:
    # given providers that each take a little time
    retriever = FakeRetriever(OPENING, PARKING, UNRELATED, delay=0.01)
    async with Call(
        stt=FakeSTT("When do you open?", delay=0.02),
        tts=FakeTTS(delay=0.01),
        answerer=ExtractiveAnswerer(),
        retriever=retriever,
    ) as call:
        # when
        call.say()
        await call.until(lambda: len(call.orchestrator.turns) == 3 and call.state is State.LISTENING)

    # then
    _, caller, ai = call.orchestrator.turns
    assert (caller.speaker, caller.text) == ("caller", "When do you open?")
    assert retriever.queries == [("201", "When do you open?")]
    assert retriever.judged == [("When do you open?", "201", "")]  # the extension names no business
    assert caller.retrieved == [
        {"text": OPENING.text, "score": 0.82, "item_id": 7, "used": True},  # counted a use
        {"text": PARKING.text, "score": 0.41, "item_id": None, "used": False},
        {"text": UNRELATED.text, "score": 0.12, "item_id": None, "used": False},
    ]
    assert (ai.speaker, ai.text) == ("ai", f"{OPENING.text}.")
    assert call.heard() == ["greeting", f"{OPENING.text}."]
    latency = caller.latency_ms
    order = ["stt_final", "retrieval", "llm_first_token", "tts_first_audio", "first_rtp"]
    assert set(order) <= set(latency), latency
    assert [latency[k] for k in order] == sorted(latency[k] for k in order), latency
    assert latency["stt_final"] >= 20
    assert latency["retrieval"] - latency["stt_final"] >= 10


async def test_the_first_sentence_is_spoken_while_the_answer_is_still_being_generated() -> None:
    # given an answer whose second sentence only comes when the test opens the gate
    answerer = ScriptedAnswerer(["We open at nine on weekdays. ", None, "On Saturdays we open at ten. "])
    async with Call(answerer=answerer) as call:
        # when
        call.say()

        # then the first sentence is heard before the answerer has finished
        await call.until(lambda: "We open at nine on weekdays." in call.heard())
        assert call.tts.texts == ["We open at nine on weekdays."]
        # the machine hears of the first audio through its event queue: a moment after the audio itself
        await call.until(lambda: call.state is State.SPEAKING)
        assert call.tts.texts == ["We open at nine on weekdays."]  # still only the first sentence
        answerer.gate.set()
        await call.until(lambda: call.state is State.LISTENING)

    assert call.heard() == ["greeting", "We open at nine on weekdays.", "On Saturdays we open at ten."]
    assert call.ai_texts()[-1] == "We open at nine on weekdays. On Saturdays we open at ten."


async def test_the_recogniser_is_told_the_names_in_the_callees_knowledge() -> None:
    # given a callee whose knowledge names its people and its place
    knowledge = FakeRetriever(
        Passage("Dr. Minsu Park is our orthodontist. He works on Tuesdays.", 0.8),
        Passage("Patients park free in the Hanbit Building's basement.", 0.4),
    )
    async with Call(retriever=knowledge, stt=FakeSTT("Does Dr. Minsu Park work Mondays?")) as call:
        # when a caller asks a question (the knowledge was made ready while the greeting played)
        call.say()
        await call.until(lambda: len(call.orchestrator.turns) == 3 and call.state is State.LISTENING)

    # then the recogniser heard it expecting those names, and not the weekday
    assert call.stt.hints == [["Dr. Minsu Park", "Hanbit Building"]]


async def test_the_callees_business_name_reaches_the_relevance_gate() -> None:
    # given an extension whose business callers call "Smile Tree"
    retriever = FakeRetriever(Passage("On Saturdays we open at ten.", 0.8))
    stt = FakeSTT("Is Smile Tree open on Saturdays?")
    async with Call(retriever=retriever, stt=stt, business="Smile Tree Dental Clinic") as call:
        # when a caller asks naming it
        call.say()
        await call.until(lambda: len(call.orchestrator.turns) == 3 and call.state is State.LISTENING)

    # then the gate judged the question knowing the name is the callee's own, not a topic to cover
    assert retriever.judged == [("Is Smile Tree open on Saturdays?", "201", "Smile Tree Dental Clinic")]
    assert call.heard() == ["greeting", "On Saturdays we open at ten."]


async def test_the_voice_is_told_when_the_caller_needs_each_sentence() -> None:
    # given an answer of two sentences, each 400 ms of audio
    answerer = ScriptedAnswerer(["We open at nine on weekdays. ", "On Saturdays we open at ten. "])
    async with Call(answerer=answerer, tts=FakeTTS(ms=400)) as call:
        # when the caller stops talking and waits
        before = now()
        call.say()
        after = now()
        await call.until(lambda: len(call.heard()) == 3 and call.state is State.LISTENING)

    # then the first sentence is needed since the caller stopped talking (a shared voice serves the
    # earliest first: callers waiting in silence go before sentences that are not due yet) ...
    first, _ = call.tts.needed["We open at nine on weekdays."]
    assert first is not None and before <= first <= after
    # ... and the second when the first one's audio runs out: after it was asked for, within 400 ms
    second, asked = call.tts.needed["On Saturdays we open at ten."]
    assert second is not None and asked < second <= asked + 0.4


async def test_the_console_is_told_the_reply_as_each_sentence_starts_to_play_with_the_confidence() -> None:
    # given an answer whose second sentence only comes when the test opens the gate
    answerer = ScriptedAnswerer(["We open at nine on weekdays. ", None, "On Saturdays we open at ten. "])
    async with Call(answerer=answerer, retriever=FakeRetriever(OPENING)) as call:
        assert call.speaking() == [GREETING]
        # when
        call.say()

        # then the first sentence is announced once it plays, while the rest is still being generated
        await call.until(lambda: "We open at nine on weekdays." in call.heard())
        await call.until(lambda: len(call.speaking()) == 2)
        assert call.speaking()[1] == "We open at nine on weekdays."
        [retrieval] = [e for e in call.published if isinstance(e, contract.Retrieval)]
        assert retrieval.confidence == OPENING.score  # the gate's probability that the knowledge answers
        assert not [e for e in call.published if isinstance(e, contract.TurnPlayed) and e.text.startswith("We")]
        # and the reply grows as the next sentence starts to play; the played turn comes after
        answerer.gate.set()
        await call.until(lambda: call.state is State.LISTENING)
    assert call.speaking()[2] == "We open at nine on weekdays. On Saturdays we open at ten."
    said = [e for e in call.published if isinstance(e, (contract.ReplySpeaking, contract.TurnPlayed))]
    reply_events = [e for e in said if e.t == said[-1].t]
    assert [type(e) for e in reply_events] == [contract.ReplySpeaking, contract.ReplySpeaking, contract.TurnPlayed]


THREE = ["First we check the calendar.", "Then we call you back.", "Finally we send the invoice."]


def played_at_least(call: Call, frames: int) -> bool:
    """Whether the reply (which starts with THREE[0]) has sent ``frames`` frames."""
    handle = call.speaker.handle(THREE[0])
    return handle is not None and handle.frames_played >= frames


async def barge_in_after(call: Call, frames: int) -> None:
    """Let the three-sentence reply play ``frames`` frames (each sentence is 10), then the caller talks."""
    call.hold = lambda: played_at_least(call, frames)
    call.say()
    await call.until(lambda: call.hold() and call.speaker.handle(THREE[0]).input_complete)
    await interrupt(call)


async def interrupt(call: Call) -> None:
    """The caller talks over the reply: it pauses on the next tick; what they said (the STT's next
    result, no backchannel) then ends it and is answered (give the answerer a waiting script)."""
    call.orchestrator.post(Ev.CALLER_ONSET)
    await call.until(lambda: call.state is State.PAUSED)
    assert call.speaker.next_frame() is None  # silent from the next tick, as fast as a barge-in
    call.say()
    await call.until(lambda: call.state is State.THINKING)


def last_ai_turn(call: Call):
    return [turn for turn in call.orchestrator.turns if turn.speaker == "ai"][-1]


async def test_barge_in_stops_our_voice_at_once_and_keeps_only_what_was_played() -> None:
    # given a three-sentence reply, all synthesised
    async with Call(answerer=ScriptedAnswerer([f"{s} " for s in THREE], [None])) as call:
        # when the caller talks right after the first sentence
        await barge_in_after(call, 10)

        # then nothing more is played, and the transcript says what the caller really heard
        assert call.speaker.next_frame() is None
        turn = last_ai_turn(call)
        assert (turn.speaker, turn.interrupted) == ("ai", True)
        assert turn.text == THREE[0]
        assert turn.unspoken == f"{THREE[1]} {THREE[2]}"
        assert call.orchestrator.barge_ins == 1
        assert call.speaking()[-1] == THREE[0]  # the sentences queued but never played were never announced
    assert call.heard() == ["greeting", THREE[0]]


async def test_a_failed_recognition_gets_the_fallback_sentence_and_the_call_goes_on() -> None:
    stt = FakeSTT(ProviderError("recogniser crashed", provider="fake"), "When do you open?")
    async with Call(stt=stt, retriever=FakeRetriever(OPENING)) as call:
        # when the first utterance cannot be recognised
        call.say()
        await call.until(lambda: len(call.orchestrator.turns) == 2 and call.state is State.LISTENING)

        # then the caller hears the apology
        fallback = FALLBACK["en"].format(owner=OWNER)
        assert call.ai_texts() == [GREETING, fallback]
        assert call.heard() == ["greeting", fallback]

        # when they ask again, the call goes on normally
        call.say()
        await call.until(lambda: len(call.orchestrator.turns) == 4 and call.state is State.LISTENING)
    assert call.orchestrator.turns[2].text == "When do you open?"
    assert call.ai_texts()[-1] == f"{OPENING.text}."
