"""Websocket consumers of the live console pages.

Both require a logged-in user (anonymous sockets are closed with 4401) and send the current state
from the database first, then the events that follow (``live.call_event``). A user can only join
the groups of extensions assigned to them; a call they may not see is closed with 4404, the same
as a call that does not exist.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webconsole.calls import access, live
from webconsole.calls.models import CallState

UNAUTHENTICATED = 4401
NOT_FOUND = 4404


class _Authenticated(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        snapshot = await self.authorize_and_snapshot(user)
        if snapshot is None:
            await self.close(code=NOT_FOUND)
            return
        groups, state = snapshot
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        await self.accept()
        await self.send_json({"type": "snapshot", **state})

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def authorize_and_snapshot(self, user) -> tuple[list[str], dict[str, Any]] | None:
        raise NotImplementedError

    async def call_event(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "call.event", "event": message["event"], "call": message["call"],
                              "turn": message.get("turn")})

    async def console_update(self, message: dict[str, Any]) -> None:
        """Other console news (operator presence, HITL) relayed as it came."""
        await self.send_json(message["payload"])


class LiveConsumer(_Authenticated):
    """``ws/live/``: every call of the user's extensions (dashboard, call list)."""

    @database_sync_to_async
    def authorize_and_snapshot(self, user) -> tuple[list[str], dict[str, Any]]:
        allowed = access.visible_extensions(user)
        groups = [live.ALL_GROUP] if allowed is access.ALL else [live.ext_group(n) for n in sorted(allowed)]
        active = access.calls_for(user).exclude(state=CallState.ENDED).order_by("started")
        return groups, {"calls": [live.call_summary(call) for call in active[:500]]}


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
