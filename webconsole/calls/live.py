"""Live updates for the console pages over Channels groups (Redis channel layer).

Groups: ``ext.<number>`` gets every event of calls to that extension (the dashboard and the lists
join the groups of the extensions the user may see; admins join ``calls.all``); ``call.<call_id>``
gets the events of one call (the call page). Messages are sent only after the database commit
(see ``ingest``), and they carry the call's summary as stored, so a page simply replaces its row.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from webconsole.calls.models import Call, Turn

if TYPE_CHECKING:
    from webconsole.calls.ingest import Event

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


ALL_GROUP = "calls.all"  # every call event (admins)


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
    }


def turn_summary(turn: Turn) -> dict[str, Any]:
    return {
        "id": turn.pk, "t": turn.t, "speaker": turn.speaker, "text": turn.text,
        "interrupted": turn.interrupted, "unspoken": turn.unspoken,
        "latency_ms": turn.latency_ms, "retrieved": turn.retrieved,
    }


def call_event(call: Call, event: Event, turn: Turn | None) -> None:
    """Tell the pages watching ``call`` about ``event`` (called after commit; never raises)."""
    message = {
        "type": "call.event",
        "event": {"event_id": event.event_id, "type": event.type, "ts": event.ts.isoformat(), "data": event.data},
        "call": call_summary(call),
        "turn": turn_summary(turn) if turn is not None else None,
    }
    groups = [call_group(call.call_id), ALL_GROUP]
    if call.callee:
        groups.append(ext_group(call.callee))
    send(groups, message)


def send(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception as exc:  # a live view missing an update must not stop the ingestion
            log.warning("live update to %s failed: %r", group, exc)
