"""Live updates for the console pages over Channels groups (Redis channel layer).

Groups: ``ext.<number>`` gets every event of calls to that extension (the dashboard and the lists
join the groups of the extensions the user may see; admins join ``calls.all``); ``call.<call_id>``
gets the events of one call (the call page); ``user.<id>`` gets one user's sockets, told to check
the user's session and extensions again after a logout or a reassignment (:func:`recheck_users`).
Messages are sent only after the database commit (see ``ingest``), and they carry the call's
summary as stored, so a page simply replaces its row.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import TYPE_CHECKING, Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from webconsole.calls.models import Call, Turn

if TYPE_CHECKING:
    from webconsole.calls.ingest import Event

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


ALL_GROUP = "calls.all"  # every call event (admins)


def user_group(user_id: int) -> str:
    """Every socket of one user: told to check the user's session and extensions again."""
    return f"user.{int(user_id)}"


def recheck_users(user_ids: list[int]) -> None:
    """Have the sockets of ``user_ids`` check again who may see what (after logout, reassignment ...)."""
    send([user_group(pk) for pk in user_ids], {"type": "console.recheck"})


def ext_group(number: str) -> str:
    return "ext." + _UNSAFE.sub("_", number)[:60]


def call_group(call_id: str) -> str:
    return "call." + _UNSAFE.sub("_", call_id)[:90]


def call_summary(call: Call) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "callee": call.callee,
        "state": call.state,
        "state_label": call.get_state_display(),
        "conversation_state": call.conversation_state,
        "ai_handled": call.ai_handled,
        "started": call.started.isoformat() if call.started else None,
        "answered": call.answered.isoformat() if call.answered else None,
        "ended": call.ended.isoformat() if call.ended else None,
        "duration_s": call.duration_s,
        "hitl_status": call.hitl_status,
        "transcript_source": call.transcript_source,
        "ai_confidence": call.ai_confidence,
        "ai_reply": call.ai_reply,
        "ai_speaking": call.ai_speaking,
    }


def turn_summary(turn: Turn) -> dict[str, Any]:
    return {
        "id": turn.pk,
        "t": turn.t,
        "end": turn.end,
        "speaker": turn.speaker,
        "text": turn.text,
        "confidence": turn.confidence,
        "interrupted": turn.interrupted,
        "unspoken": turn.unspoken,
        "latency_ms": turn.latency_ms,
        "retrieved": turn.retrieved,
    }


def call_event(call: Call, event: Event, turn: Turn | None, seq: int | None = None) -> None:
    """Tell the pages watching ``call`` about ``event`` (called after commit; never raises).

    ``seq`` is the stored event's id: a socket whose snapshot already included it drops it.
    """
    message = {
        "type": "call.event",
        "event": {
            "event_id": event.event_id,
            "seq": seq,
            "type": event.type,
            "ts": event.ts.isoformat(),
            "data": event.data,
        },
        "call": call_summary(call),
        "turn": turn_summary(turn) if turn is not None else None,
    }
    groups = [call_group(call.call_id), ALL_GROUP]
    if call.callee:
        groups.append(ext_group(call.callee))
    send(groups, message)


def send(groups: list[str], message: dict[str, Any]) -> None:
    """Queue ``message`` for every group; never blocks the caller (ingestion, a view), never raises.

    One background thread with its own event loop relays the queue in order, so a slow channel
    layer delays live pages, not the database work. Messages still queued when the process exits
    are lost: pages get the state from the database when they (re)connect.
    """
    if groups:
        _relay().put(groups, message)


def flush(timeout_s: float = 5.0) -> bool:
    """Wait until every message queued so far was handed to the channel layer; False on timeout.

    For tests that must know an update has left before they go on (e.g. a race with a socket's join).
    """
    done = threading.Event()
    _relay().put_marker(done)
    return done.wait(timeout_s)


class _Relay:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[list[str], dict[str, Any]] | threading.Event] | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="live-relay", daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def put(self, groups: list[str], message: dict[str, Any]) -> None:
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (list(groups), message))

    def put_marker(self, done: threading.Event) -> None:
        """Set ``done`` once everything queued before it has been sent."""
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, done)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue = asyncio.Queue()
        self.ready.set()
        self.loop.run_until_complete(self._forward())

    async def _forward(self) -> None:
        assert self.queue is not None
        layer = None
        while True:
            item = await self.queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            groups, message = item
            if layer is None:
                # A layer object of this thread's own: channels_redis keeps connection pools per event
                # loop, and the process's default layer is also used from other loops (consumers, tests).
                if get_channel_layer() is None:
                    continue
                layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            results = await asyncio.gather(*(layer.group_send(g, message) for g in groups), return_exceptions=True)
            for group, result in zip(groups, results, strict=True):
                if isinstance(result, BaseException):  # a page missing an update must not stop the relay
                    log.warning("live update to %s failed: %r", group, result)


_RELAY: _Relay | None = None
_RELAY_LOCK = threading.Lock()


def _relay() -> _Relay:
    global _RELAY
    with _RELAY_LOCK:
        if _RELAY is None or not _RELAY.thread.is_alive():
            _RELAY = _Relay()
        return _RELAY
