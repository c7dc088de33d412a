"""The typed frames the conversation's stages pass to each other, from the caller's audio to a reply.

    media plane --Utterance--> turn taking --Heard--> deciding --Answer | AskPerson--> reply | hold

Each is a frozen record of one step's result, so a stage's input and output are named, typed and
checked, instead of tuples cast at the other end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ariapp.conversation.confirm import Offer
    from ariapp.conversation.context import Marks, TurnLog
    from ariapp.conversation.hitl import Trigger

__all__ = ["Answer", "AskPerson", "Heard", "Utterance"]


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """What the caller said, as the listener cut it: audio at the call's rate, ended at ``ended_at``
    (the call's clock, when the speech stopped, before the silence that ended the turn)."""

    pcm: np.ndarray
    ended_at: float


@dataclass(frozen=True, slots=True, eq=False)
class Heard:
    """A finished caller turn: its text, its transcript line and the turn's latency marks; with
    ``relisten``, its audio can be recognised again expecting some words (what they return is what
    was heard then)."""

    text: str
    turn: TurnLog
    marks: Marks
    relisten: Callable[[Sequence[str]], Awaitable[str]] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Answer:
    """The AI answers ``asked`` from ``passages`` (none: it says it is not sure), or, with ``offer``,
    asks "did you mean …?" with the offer's text instead."""

    asked: str
    passages: list[Any]
    confidence: float | None
    offer: Offer | None = None


@dataclass(frozen=True, slots=True, eq=False)
class AskPerson:
    """A person should answer ``asked``: the HITL desk, or the polite away message."""

    asked: str
    trigger: Trigger
    confidence: float | None
