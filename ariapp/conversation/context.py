"""What every stage of one conversation shares (:class:`CallContext`): who it answers for and how
long it waits (``options.py``), its clock, the console's ear (``publish``), the state machine's inbox
(``post``), the tasks it runs, the people who can help — and the call's transcript, each turn with
its latency marks (:class:`TurnLog`, :class:`Marks`).

The stages (turn taking, deciding, speaking, holding) read these fields when they act, never copies
of them, so what a test or the console changes here reaches every stage at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import contract
from aipbx.text.prompt import Turn
from ariapp.conversation.hitl import Desk, HitlConfig, MessageTaker
from ariapp.conversation.options import ConversationConfig, Timing
from ariapp.tasks import TaskScope

if TYPE_CHECKING:
    from ariapp.conversation.machine import Ev

__all__ = ["CallContext", "Marks", "TurnLog"]


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
    def waiting_on_model(self) -> Iterator[None]:
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


class CallContext:
    """One conversation's shared state (see the module docstring)."""

    def __init__(
        self,
        *,
        config: ConversationConfig,
        clock: Callable[[], float],
        since_answer: Callable[[], float],
        publish: Callable[[contract.Event], None],
        post: Callable[[Ev, object], None],
        tasks: TaskScope,
        desk: Desk | None,
        hitl: HitlConfig,
        voicemail: MessageTaker | None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.since_answer = since_answer
        self.publish = publish
        self.post = post
        self.tasks = tasks
        self.desk = desk  # None: no human in the loop (the AI says it is not sure)
        self.hitl = hitl
        # None, or voicemail off: after the away/timeout message the conversation goes on
        self.voicemail = voicemail if hitl.voicemail else None
        self.turns: list[TurnLog] = []
        self._told: set[int] = set()  # ids of the AI turns published as played (each once)

    @property
    def timing(self) -> Timing:
        return self.config.timing

    @property
    def lang(self) -> str:
        return self.config.lang

    # --- transcript --------------------------------------------------------------------------------
    def log(self, speaker: str, text: str, at: float | None = None) -> TurnLog:
        turn = TurnLog(round(self.since_answer() if at is None else max(at, 0.0), 3), speaker, text)
        self.turns.append(turn)
        return turn

    def played(self, turn: TurnLog) -> None:
        """Tell the console an AI turn was played, as it was heard (once per turn): the console's
        transcript then holds every turn of :meth:`report` that has words."""
        if id(turn) not in self._told:
            self._told.add(id(turn))
            self.publish(contract.TurnPlayed(**asdict(turn)))

    def history(self) -> list[Turn]:
        """The conversation before the latest turn, for the answerer."""
        return [Turn(t.speaker, t.text) for t in self.turns[:-1] if t.text]

    def report(self) -> list[dict]:
        return [asdict(t) for t in self.turns]
