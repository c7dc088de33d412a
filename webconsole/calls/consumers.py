"""Websocket consumers of the console pages: ``ws/live/`` (dashboard, lists), ``ws/calls/<id>/`` (one
call) and ``ws/console/`` (every page: help-request alerts and the heartbeat).

All require a logged-in user (anonymous sockets are closed with 4401) and send the current state
from the database first, then the events that follow (``live.call_event``). A user can only join
the groups of extensions assigned to them; a call they may not see is closed with 4404, the same
as a call that does not exist.

The socket joins its groups *before* it reads the state: an event committed while the state is
being read would otherwise reach neither (it is relayed after commit, and the groups were not yet
joined). Joined first, such an event may come both in the state and live; the state therefore
records, per call, the sequence number (``CallEvent`` id) of the last event it includes, and a live
event at or below that number is dropped. Within one call the numbers follow the commit order
(every event of a call is stored with the call's row locked), so nothing newer is dropped.

Who may see what is checked again while a socket is open: when told to (``console.recheck`` on the
user's group, sent after a logout, a change of the user's extensions or role, see
``webconsole.calls.signals``) and every ``AIPBX_WS_RECHECK_S`` seconds (a session that expired or
was deleted without a signal; the channel layer may also lose a message). The session is read
again from the database, not from the copy the socket was opened with. A user logged out is closed
with 4401 (the page asks to log in), a call no longer visible with 4404, and a dashboard whose
extensions changed with 4409: the page reconnects and gets the state of its new scope.

Every socket also keeps its operator present (:mod:`webconsole.calls.presence`): the server sends
``{"type": "presence.ping"}`` every ``AIPBX_PRESENCE_HEARTBEAT_S``, the page answers
``{"type": "heartbeat"}``, and each answer (and the connect itself) stamps the operator's
``last_seen``. A page that vanished without closing answers nothing, and its operator goes offline
``AIPBX_PRESENCE_TIMEOUT_S`` after its last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils.module_loading import import_string

from webconsole.calls import access, actions, live
from webconsole.calls.models import CallState
from webconsole.hitl.queries import waiting_count

log = logging.getLogger(__name__)

UNAUTHENTICATED = 4401
NOT_FOUND = 4404
SCOPE_CHANGED = 4409


class _Authenticated(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        self.seen: dict[str, int] = {}
        self.ended = False
        self.watch: asyncio.Task[None] | None = None
        self.pinger: asyncio.Task[None] | None = None
        self.heard_at = float("-inf")  # monotonic time of the last heartbeat stored
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        groups = await self.authorized_groups(user)
        if groups is None:
            await self.close(code=NOT_FOUND)
            return
        self.user_id = user.pk
        # Join first, read the state second: see the module docstring.
        for group in [*groups, live.user_group(user.pk)]:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        snapshot = await self.snapshot(user)
        if snapshot is None:  # the call went out of sight between the two reads
            await self._leave()
            await self.close(code=NOT_FOUND)
            return
        state, self.seen = snapshot
        await self.accept()
        await self.send_json({"type": "snapshot", **state})
        await self._heartbeat()
        self.watch = asyncio.create_task(self._recheck_every(settings.AIPBX_WS_RECHECK_S))
        self.pinger = asyncio.create_task(self._ping_every(settings.AIPBX_PRESENCE_HEARTBEAT_S))

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def snapshot(self, user) -> tuple[dict[str, Any], dict[str, int]] | None:
        """The page's state now and, per call in it, the sequence number of the last event it includes.

        None when this socket's subject is not (or no longer) the user's. The sequence numbers must be
        read no later than the state they stand for (in the same query, or before): read after, they
        could cover an event the state does not show, and that event would be dropped.
        """
        raise NotImplementedError

    async def authorized_groups(self, user) -> list[str] | None:
        """The call groups ``user`` may be in now; None when this socket's subject is no longer theirs."""
        raise NotImplementedError

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """What the page says: only heartbeats mean anything; anything else (or malformed) is ignored."""
        try:
            content = json.loads(text_data) if text_data else None
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "heartbeat" and not self.ended:
            await self._heartbeat()

    async def _heartbeat(self) -> None:
        # At most one write per half interval and socket, however often a page (or a script) sends.
        now = time.monotonic()
        if now - self.heard_at < settings.AIPBX_PRESENCE_HEARTBEAT_S / 2:
            return
        self.heard_at = now
        try:
            await database_sync_to_async(actions.do_heartbeat)(self.user_id)
        except Exception:  # a database hiccup: the next heartbeat tries again
            log.warning("heartbeat of user %s not stored", self.user_id, exc_info=True)

    async def _ping_every(self, seconds: float) -> None:
        while not self.ended:
            await asyncio.sleep(seconds)
            if not self.ended:
                await self.send_json({"type": "presence.ping"})

    async def call_event(self, message: dict[str, Any]) -> None:
        if self.ended or self._already_sent(message["call"]["call_id"], message["event"].get("seq")):
            return
        await self.send_json(
            {"type": "call.event", "event": message["event"], "call": message["call"], "turn": message.get("turn")}
        )

    def _already_sent(self, call_id: str, seq: int | None) -> bool:
        """Whether the snapshot already showed this event (it was committed before the state was read)."""
        last = self.seen.get(call_id)
        if last is None or seq is None:
            return False
        if seq <= last:
            return True
        del self.seen[call_id]  # every later event of the call is newer still
        return False

    async def console_update(self, message: dict[str, Any]) -> None:
        """Other console news (operator presence, HITL) relayed as it came."""
        if not self.ended:
            await self.send_json(message["payload"])

    async def console_recheck(self, _message: dict[str, Any]) -> None:
        await self.recheck()

    async def recheck(self) -> None:
        """End the socket if its user is logged out or may no longer see what it carries."""
        if self.ended:
            return
        user = await self._current_user()
        if user is None:
            await self._end(UNAUTHENTICATED)
            return
        groups = await self.authorized_groups(user)
        if groups is None:
            await self._end(NOT_FOUND)
        elif set(groups) | {live.user_group(user.pk)} != set(self.groups_joined):
            await self._end(SCOPE_CHANGED)

    async def _current_user(self):
        """The socket's user as the database says now, or None (logged out, session gone, deactivated)."""
        session = self.scope.get("session")
        if session is not None and session.session_key:
            # A fresh store: the socket's own copy of the session still holds the user after a logout.
            store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=session.session_key)
            user = await get_user({"session": store})
        else:  # a scope made without sessions (tests, other middleware): the user row decides
            user = await database_sync_to_async(
                lambda: get_user_model().objects.filter(pk=self.user_id, is_active=True).first()
            )()
        if user is None or not user.is_authenticated or user.pk != self.user_id or not user.is_active:
            return None
        return user

    async def _recheck_every(self, seconds: float) -> None:
        while not self.ended:
            await asyncio.sleep(seconds)
            try:
                await self.recheck()
            except Exception:  # a database hiccup must not end the page; the next round tries again
                log.warning("websocket recheck failed", exc_info=True)

    async def _end(self, code: int) -> None:
        """Stop relaying at once, then close: no event reaches the page after the decision."""
        self.ended = True
        await self._leave()
        await self.close(code=code)

    async def _leave(self) -> None:
        self.ended = True
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []
        for name in ("watch", "pinger"):
            task = getattr(self, name, None)
            setattr(self, name, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class LiveConsumer(_Authenticated):
    """``ws/live/``: every call of the user's extensions (dashboard, call list)."""

    @database_sync_to_async
    def snapshot(self, user) -> tuple[dict[str, Any], dict[str, int]]:
        # One statement: each call's row and its last event's number are read at the same instant.
        active = (
            access.calls_for(user).exclude(state=CallState.ENDED).annotate(seq=Max("events__id")).order_by("started")
        )[:500]
        calls = list(active)
        return (
            {"calls": [live.call_summary(call) for call in calls]},
            {call.call_id: call.seq for call in calls if call.seq is not None},
        )

    @database_sync_to_async
    def authorized_groups(self, user) -> list[str]:
        return self._groups(user)

    @staticmethod
    def _groups(user) -> list[str]:
        allowed = access.visible_extensions(user)
        return [live.ALL_GROUP] if allowed is access.ALL else [live.ext_group(n) for n in sorted(allowed)]


class CallConsumer(_Authenticated):
    """``ws/calls/<call_id>/``: one call's state, transcript and turns as they happen."""

    @database_sync_to_async
    def snapshot(self, user) -> tuple[dict[str, Any], dict[str, int]] | None:
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        call = access.calls_for(user).filter(call_id=call_id).annotate(seq=Max("events__id")).first()
        if call is None:
            return None
        # Read after the call row: turns of newer events may be here too, and come again live; the
        # page shows a turn once (by its id).
        turns = [live.turn_summary(turn) for turn in call.turns.order_by("t", "id")]
        seen = {call.call_id: call.seq} if call.seq is not None else {}
        return {"call": live.call_summary(call), "turns": turns}, seen

    @database_sync_to_async
    def authorized_groups(self, user) -> list[str] | None:
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        visible = access.calls_for(user).filter(call_id=call_id).exists()
        return [live.call_group(call_id)] if visible else None


class ConsoleConsumer(_Authenticated):
    """``ws/console/``: what every console page needs, whatever else it shows.

    The help requests of the user's extensions (``console.update`` payloads: the alerts and the
    badge; the snapshot is the number waiting now) and the operator's heartbeat. It joins the
    groups the dashboard joins, but relays no call events: the page shows no calls.
    """

    @database_sync_to_async
    def snapshot(self, user) -> tuple[dict[str, Any], dict[str, int]]:
        return {"hitl_waiting": waiting_count(user)}, {}

    @database_sync_to_async
    def authorized_groups(self, user) -> list[str]:
        return LiveConsumer._groups(user)

    async def call_event(self, message: dict[str, Any]) -> None:
        return None
