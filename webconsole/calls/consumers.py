"""Websocket consumers of the live console pages.

Both require a logged-in user (anonymous sockets are closed with 4401) and send the current state
from the database first, then the events that follow (``live.call_event``). A user can only join
the groups of extensions assigned to them; a call they may not see is closed with 4404, the same
as a call that does not exist.

Who may see what is checked again while a socket is open: when told to (``console.recheck`` on the
user's group, sent after a logout, a change of the user's extensions or role, see
``webconsole.calls.signals``) and every ``AIPBX_WS_RECHECK_S`` seconds (a session that expired or
was deleted without a signal; the channel layer may also lose a message). The session is read
again from the database, not from the copy the socket was opened with. A user logged out is closed
with 4401 (the page asks to log in), a call no longer visible with 4404, and a dashboard whose
extensions changed with 4409: the page reconnects and gets the state of its new scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from webconsole.calls import access, live
from webconsole.calls.models import CallState

log = logging.getLogger(__name__)

UNAUTHENTICATED = 4401
NOT_FOUND = 4404
SCOPE_CHANGED = 4409


class _Authenticated(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        self.ended = False
        self.watch: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        snapshot = await self.authorize_and_snapshot(user)
        if snapshot is None:
            await self.close(code=NOT_FOUND)
            return
        groups, state = snapshot
        self.user_id = user.pk
        for group in [*groups, live.user_group(user.pk)]:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = [*groups, live.user_group(user.pk)]
        await self.accept()
        await self.send_json({"type": "snapshot", **state})
        self.watch = asyncio.create_task(self._recheck_every(settings.AIPBX_WS_RECHECK_S))

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def authorize_and_snapshot(self, user) -> tuple[list[str], dict[str, Any]] | None:
        raise NotImplementedError

    async def authorized_groups(self, user) -> list[str] | None:
        """The call groups ``user`` may be in now; None when this socket's subject is no longer theirs."""
        raise NotImplementedError

    async def call_event(self, message: dict[str, Any]) -> None:
        if self.ended:
            return
        await self.send_json(
            {"type": "call.event", "event": message["event"], "call": message["call"], "turn": message.get("turn")}
        )

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
        watch, self.watch = getattr(self, "watch", None), None
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch


class LiveConsumer(_Authenticated):
    """``ws/live/``: every call of the user's extensions (dashboard, call list)."""

    @database_sync_to_async
    def authorize_and_snapshot(self, user) -> tuple[list[str], dict[str, Any]]:
        groups = self._groups(user)
        active = access.calls_for(user).exclude(state=CallState.ENDED).order_by("started")
        return groups, {"calls": [live.call_summary(call) for call in active[:500]]}

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
    def authorize_and_snapshot(self, user) -> tuple[list[str], dict[str, Any]] | None:
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        call = access.calls_for(user).filter(call_id=call_id).first()
        if call is None:
            return None
        turns = [live.turn_summary(turn) for turn in call.turns.order_by("t", "id")]
        return [live.call_group(call.call_id)], {"call": live.call_summary(call), "turns": turns}

    @database_sync_to_async
    def authorized_groups(self, user) -> list[str] | None:
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        visible = access.calls_for(user).filter(call_id=call_id).exists()
        return [live.call_group(call_id)] if visible else None
