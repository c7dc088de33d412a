"""Legs the ARI app places itself: ring an extension's phone into this app and watch it answer or fail.

Shared by the operator's click-to-call (``ariapp.calls.callback``) and the transfer of an AI call to
an operator (``ariapp.calls.transfer``). :class:`Legs` is fed every ARI event (never blocks) and
remembers which of its channels answered (entered Stasis) and which are gone, with the Q.850 cause;
:meth:`Legs.ring` originates one and :meth:`Legs.until_answered` waits for it, bounded by the ring time.

Only these two modules place calls, only on an operator's decision (a click, or the console's
transfer decision), and the ARI client dials nothing but ``PJSIP/<digits>[@trunk]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from ariapp.ari.client import AriClient
from ariapp.ari.models import AriEvent

HANGUP_GRACE_S = 5.0  # beyond the ring time, before we give up on a leg ourselves

# Q.850 causes of a leg destroyed before it answered.
BUSY, NO_ANSWER, DECLINED, UNREACHABLE = "busy", "no_answer", "declined", "unreachable"
_CAUSES = {17: BUSY, 21: DECLINED, 1: UNREACHABLE, 3: UNREACHABLE, 20: UNREACHABLE, 27: UNREACHABLE, 38: UNREACHABLE}


def why_unanswered(cause: int | None) -> str:
    """``busy``, ``declined``, ``unreachable`` or ``no_answer`` (anything else: it rang out or was cancelled)."""
    return _CAUSES.get(cause or 0, NO_ANSWER)


def operator_failure(cause: int | None) -> str:
    kind = why_unanswered(cause)
    return "operator_unregistered" if kind == UNREACHABLE else f"operator_{kind}"


def caller_id(name: str, number: str) -> str:
    """``"Name" <number>`` with the name cleaned of anything a SIP header should not carry."""
    clean = "".join(c for c in name if c.isalnum() or c in " .-_")[:40]
    return f'"{clean}" <{number}>' if clean else number


class Legs:
    """The answer/hang-up state of a fixed set of channels this app originates."""

    def __init__(self, ari: AriClient, channel_ids: Iterable[str], ring_s: int) -> None:
        self.ari = ari
        self.channel_ids = tuple(channel_ids)
        self.ring_s = ring_s
        self.answered: set[str] = set()
        self.gone: dict[str, int | None] = {}  # channel id -> hang-up cause
        self._changed = asyncio.Event()

    def on_event(self, event: AriEvent) -> None:
        channel = event.channel
        if channel is None or channel.id not in self.channel_ids:
            return
        if event.type == "StasisStart":
            self.answered.add(channel.id)
        elif event.type in ("ChannelDestroyed", "StasisEnd", "ChannelHangupRequest"):
            cause = event.raw.get("cause")
            if channel.id not in self.gone or self.gone[channel.id] is None:
                self.gone[channel.id] = cause if isinstance(cause, int) else None
        else:
            return
        self._changed.set()

    def changed(self) -> None:
        """Wake the waiters (something outside the legs changed, e.g. the caller hung up)."""
        self._changed.set()

    async def ring(self, leg: str, endpoint: str, *, caller: str, app_args: str) -> None:
        """Originate ``leg`` to ``endpoint`` (``PJSIP/<digits>[@trunk]``) into this app."""
        await self.ari.originate(leg, endpoint, caller_id=caller, timeout_s=self.ring_s, app_args=app_args)

    async def until_answered(self, leg: str, watch: Callable[[], bool] | None = None) -> bool:
        """True when ``leg`` answered; False when it hung up first, ``watch()`` became true, or it rang too long."""

        def settled() -> bool:
            return leg in self.answered or leg in self.gone or (watch is not None and watch())

        await self.until(settled, self.ring_s + HANGUP_GRACE_S)
        if leg in self.answered and leg not in self.gone:
            return True
        if leg not in self.gone:
            self.gone[leg] = None  # rang out on our side: hung up in the teardown
        return False

    async def until(self, condition: Callable[[], bool], limit_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
