"""Asking a person (HITL): the console is asked, the caller holds with music and spoken updates
until an operator's answer arrives, or hears that nobody is free (and, with voicemail on, leaves a
message after the tone).

:class:`Holding` takes an :class:`~ariapp.conversation.frames.AskPerson` from the deciding stage and
speaks through the call's :class:`~ariapp.conversation.speaking.Speaking`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import contract
from ariapp import metrics
from ariapp.conversation.context import CallContext, TurnLog
from ariapp.conversation.frames import AskPerson
from ariapp.conversation.hitl import beep
from ariapp.conversation.machine import Ev
from ariapp.conversation.speaking import Speaking
from ariapp.tasks import cancel_and_wait

log = logging.getLogger(__name__)

__all__ = ["Holding"]


class Holding:
    """One call's help requests (see the module docstring)."""

    def __init__(
        self, context: CallContext, speaking: Speaking, transfer: Callable[[], asyncio.Future[bool] | None]
    ) -> None:
        self.context = context
        self.speaking = speaking
        self._transfer = transfer  # the caller being put through to an operator, if they are
        self.requests = 0

    async def ask(self, person: AskPerson, turn: TurnLog) -> None:
        """Ask the console for a person's answer; hold the caller meanwhile (or say we are away)."""
        context = self.context
        desk, hitl = context.desk, context.hitl
        assert desk is not None
        request_id = uuid.uuid4().hex
        self.requests += 1
        context.publish(
            contract.HitlRequested(
                request_id=request_id,
                question=person.asked,
                reason=person.trigger.reason,
                detail=person.trigger.detail,
                confidence=person.confidence,
                retrieved=turn.retrieved,
                recent_turns=[{"speaker": t.speaker, "text": t.text} for t in context.turns[-7:-1] if t.text],
                callee=context.config.owner_key,
                language=context.config.language,
            )
        )
        try:
            decision = await desk.reply(request_id, hitl.decision_s)
            if decision is not None and decision.get("kind") == "transfer":
                # the console sent the call session a transfer request too: it cancels this task
                log.info("HITL %s: putting the caller through to %s", request_id, decision.get("operator", "?"))
                await asyncio.sleep(context.timing.transfer_wait_s)
                decision = None  # the request never reached the call: nobody after all
        except asyncio.CancelledError:
            if self._transfer() is not None:  # an operator took the call before the hold began
                context.publish(contract.HitlCancelled(request_id=request_id, why="transfer"))
            raise
        if decision is None or decision.get("kind") != "queued":
            log.info("HITL %s: nobody available (%s)", request_id, (decision or {}).get("kind", "no answer"))
            metrics.hitl_outcome("away")
            await self._nobody(request_id, "away")
            return
        log.info(
            "HITL %s (%s): queued for %s operator(s), caller on hold",
            request_id,
            person.trigger.reason,
            decision.get("operators", "?"),
        )
        context.post(Ev.HOLD, None)
        try:
            answer = await self._hold(request_id)
        except asyncio.CancelledError:
            why = "transfer" if self._transfer() is not None else "caller_hangup"
            context.publish(contract.HitlCancelled(request_id=request_id, why=why))
            raise
        log.info("HITL %s: %s", request_id, "hold limit reached" if answer is None else "answer received")
        if answer is None:
            context.publish(contract.HitlTimeout(request_id=request_id))
            await self._nobody(request_id, "timeout")
            return
        context.post(Ev.HUMAN_REPLY, None)
        context.publish(contract.HitlSpoken(request_id=request_id, text=answer))
        await self.speaking.say(answer)

    def message(self, name: str) -> Any:
        """One of the hold's messages: the extension's own words (console settings), else the
        language's default (``hitl.MESSAGES``)."""
        config = self.context.config
        own = {"checking": config.hold_message, "updates": config.update_message}.get(name)
        if own:
            text = own.replace("{owner}", config.owner)
            return (text,) if name == "updates" else text
        messages = self.context.hitl.messages.get(config.lang) or self.context.hitl.messages["en"]
        value = messages[name]
        return value.format(owner=config.owner) if isinstance(value, str) else value

    async def _nobody(self, request_id: str, reason: str) -> None:
        """Nobody is free (``away``) or answered in time (``timeout``): say so, then take a message
        (voicemail on) or let the conversation go on."""
        if self.context.voicemail is not None:
            await self._take_message(request_id, reason, self.message(reason))
            return
        self.context.post(Ev.HUMAN_REPLY, None)
        await self.speaking.say(self.message(reason))

    async def _take_message(self, request_id: str, reason: str, apology: str) -> None:
        """Say so, ask for a message, beep, record it, thank the caller and end the call.

        The caller's hang-up cancels this task; the session keeps the message recorded so far.
        """
        voicemail = self.context.voicemail
        assert voicemail is not None
        self.context.post(Ev.VOICEMAIL, None)
        await self.speaking.say(f"{apology} {self.message('voicemail')}")
        await self.speaking.play(beep(self.speaking.rate), "(tone)")
        ended = await voicemail.take_message(request_id, reason)
        log.info("voicemail for HITL %s (%s) ended: %s", request_id, reason, ended)
        await self.speaking.say(self.message("voicemail_end"))
        self.context.post(Ev.FINISHED, None)

    async def _hold(self, request_id: str) -> str | None:
        """Hold music with spoken updates until the operator's answer arrives or the hold limit passes."""
        hitl, clock = self.context.hitl, self.context.clock
        started = clock()
        answer = self.context.tasks.spawn(self._wait_for_answer(request_id, started + hitl.hold_s), "hitl-answer")
        try:
            await self.speaking.say(self.message("checking"))
            updates = list(self.message("updates"))
            milestones = [s for s in hitl.updates_s if s < hitl.hold_s] + [hitl.hold_s]
            for index, until in enumerate(milestones):
                if answer.done():
                    break
                await self.speaking.music_until(started + until, answer)
                if answer.done() or until >= hitl.hold_s:
                    break
                await self.speaking.say(updates[min(index, len(updates) - 1)])
            if not answer.done() or answer.cancelled() or answer.exception() is not None:
                return None
            return answer.result()
        finally:
            await cancel_and_wait(answer)

    async def _wait_for_answer(self, request_id: str, deadline: float) -> str | None:
        desk, clock = self.context.desk, self.context.clock
        assert desk is not None
        while (left := deadline - clock()) > 0:
            reply = await desk.reply(request_id, min(left, self.context.timing.desk_poll_s))
            if reply and reply.get("kind") == "answer" and str(reply.get("text", "")).strip():
                return str(reply["text"]).strip()
        return None
