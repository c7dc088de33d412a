"""Caps on AI calls: how many one caller may hold at once, and how many the app takes in total.

Without them one phone (a stuck auto-dialler, a prank loop) could hold any number of 600 s AI
calls, each with its models, socket and recorder. A call over a cap is not answered by the AI: the
ARI app hands it back to the dialplan (``[aipbx-busy]``), where the caller hears a short busy message
in the called extension's language as early media and gets SIP 486 Busy Here; its CDR line says
which cap refused it (:data:`REASONS`).

Pure: the decision is a function of the callers of the AI calls in progress. Callers without a
number (withheld, anonymous) cannot be told apart, so only the total cap applies to them: one
anonymous caller must not lock out every other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: ``limit`` of a refusal -> the CDR ``termination_reason`` of the refused call.
REASONS = {"per_caller": "limit_per_caller", "total": "limit_total", "capacity": "limit_capacity"}

#: What a refused caller hears (the ARI app synthesises it at start-up with the language's voice).
BUSY_MESSAGE = {
    "en-US": "I'm sorry, I can't take another call right now. Please try again later. Goodbye.",
    "ko-KR": "죄송합니다. 지금은 통화를 더 받을 수 없습니다. 잠시 후 다시 걸어 주세요.",
}


def busy_sound(language: str) -> str:
    """The sound file name (no extension) of the busy message in ``language``; the dialplan plays it."""
    return f"ai-busy-{language}"


def busy_exten(language: str) -> str:
    """The extension of ``[aipbx-busy]`` for ``language`` (``ko-KR`` -> ``ko``: dashes are ignored in
    dialplan extension names, so the full tag cannot be one)."""
    return language.split("-", 1)[0].lower()


def identifiable(caller: str) -> bool:
    """Whether a caller number tells one caller from another (withheld and anonymous ones do not)."""
    return any(ch.isdigit() for ch in caller)


@dataclass(frozen=True, slots=True)
class CallLimits:
    """``per_caller`` and ``total`` AI calls at once; 0 means no cap."""

    per_caller: int = 2
    total: int = 50

    def refuse(self, caller: str, active_callers: Iterable[str]) -> str | None:
        """The cap a new AI call from ``caller`` would exceed (``per_caller`` or ``total``), or None.

        ``active_callers`` holds the caller number of every AI call in progress (set-up included).
        """
        callers = list(active_callers)
        if self.per_caller and identifiable(caller) and callers.count(caller) >= self.per_caller:
            return "per_caller"  # the more specific reason when both caps are reached
        if self.total and len(callers) >= self.total:
            return "total"
        return None
