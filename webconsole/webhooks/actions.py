"""Writing webhook events (the outbox) and re-queueing dead deliveries.

:func:`emit` is called by the code that stores a fact, inside its transaction: the event and its
deliveries commit or roll back with the fact, and the delivery tasks are queued only after the
commit. The ``emit_*`` helpers turn one stored call, help request or extraction into the event's
``data`` so the ingest modules need a single line each.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

import contract
from webconsole.webhooks.models import EVENT_TYPES, Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint

if TYPE_CHECKING:
    from webconsole.calls.models import Call
    from webconsole.hitl.models import HitlRequest

log = logging.getLogger(__name__)

#: Dial outcomes of an unanswered call that mean "could not be reached", not "nobody picked up".
FAILED_DIAL_STATUSES = frozenset({"CHANUNAVAIL", "CONGESTION", "INVALIDARGS", "DONTCALL", "TORTURE"})
#: ``termination_reason`` values (ariapp.calls.tracker) of a call cut short by the system (the ARI app
#: or Asterisk going down under it), or turned away by it at an AI call cap (ariapp.calls.limits: the
#: caller was never served). ``events_lost`` is not one: the call went on, only its end was not seen.
FAILED_REASONS = frozenset(
    {"error", "app_restart", "asterisk_restart", "limit_per_caller", "limit_total", "limit_capacity"}
)


def emit(event_type: str, *, key: str, data: dict[str, Any], occurred_at: datetime | None = None) -> OutboxEvent | None:
    """Record ``event_type`` about ``key`` (a call id, a request id) and one delivery per subscribed endpoint.

    Must run inside the transaction that stores the fact. The same ``(event_type, key)`` twice
    is one event (a replayed ingest emits nothing new). Returns the new event, or None.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    event, created = OutboxEvent.objects.get_or_create(
        key=f"{event_type}:{key}"[:200],
        defaults={"type": event_type, "payload": data, "occurred_at": occurred_at or timezone.now()},
    )
    if not created:
        return None
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event_type)]
    deliveries = Delivery.objects.bulk_create([Delivery(endpoint=e, event=event) for e in endpoints])
    for delivery in deliveries:
        queue_after_commit(delivery.pk)
    return event


def do_retry_deliveries(delivery_ids: list[int]) -> int:
    """Give dead deliveries a fresh round of attempts (1 + retries), starting now. Returns how many."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=delivery_ids, status=DeliveryStatus.DEAD)
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        for pk in ids:
            queue_after_commit(pk)
    return len(ids)


def queue_after_commit(delivery_id: int, countdown: float = 0.0) -> None:
    from webconsole.webhooks import tasks

    transaction.on_commit(lambda: tasks.schedule(delivery_id, countdown))


# --- one line in each place a fact is stored -----------------------------------------------------


def call_failed(termination_reason: str, dial_status: str, answered: bool) -> bool:
    """Whether an ended call failed (system error, lost app, unreachable) rather than ended normally."""
    if termination_reason in FAILED_REASONS:
        return True
    return not answered and dial_status.upper() in FAILED_DIAL_STATUSES


def emit_call_event(call: Call, event_type: str, data: dict[str, Any], ts: datetime) -> None:
    """The webhook event (if any) of one ``call.*`` event just applied to ``call`` (webconsole.calls.ingest)."""
    from webconsole.calls.models import CallState

    if event_type == contract.CallStarted.TYPE:
        emit("call_started", key=call.call_id, occurred_at=ts, data=_call_data(call, "started"))
    elif event_type == contract.CallAnswered.TYPE and data.get("ai") and call.state == CallState.AI:
        emit("ai_activated", key=call.call_id, occurred_at=ts, data=_call_data(call, "started", "answered"))
    elif event_type == contract.CallEnded.TYPE:
        failed = call_failed(call.termination_reason, call.dial_status, call.answered is not None)
        details = _call_data(
            call,
            "started",
            "answered",
            "ended",
            "duration_s",
            "billsec",
            "ai_handled",
            "answered_by",
            "hangup_by",
            "termination_reason",
            "dial_status",
        )
        emit("call_failed" if failed else "call_ended", key=call.call_id, occurred_at=ts, data=details)
    elif event_type == contract.TransferStatus.TYPE and data.get("status") == "connected":
        # an operator's phone has the caller (put through, or taken over after listening in)
        transfer = call.transfers.filter(transfer_id=str(data.get("transfer_id") or "")).first()
        if transfer is None:
            return
        emit(
            "call_transferred",
            key=f"{call.call_id}:{transfer.transfer_id}",
            occurred_at=ts,
            data={
                **_call_data(call, "started", "answered"),
                "transfer_id": transfer.transfer_id,
                "mode": transfer.mode,
                "operator": transfer.operator.get_username() if transfer.operator_id else "",
                "operator_ext": transfer.operator_ext,
            },
        )


def emit_hitl_event(request: HitlRequest, event_type: str, ts: datetime) -> None:
    """``hitl_requested`` or ``hitl_resolved`` for ``request`` (webconsole.hitl.ingest); never the question text."""
    data = {
        **_call_data(request.call),
        "request_id": request.request_id,
        "reason": request.reason,
        "status": request.status,
    }
    if event_type == "hitl_resolved":
        data["operator"] = request.claimed_by.get_username() if request.claimed_by_id else ""
        data["answered_at"] = _iso(request.answered_at)
        data["delivered_at"] = _iso(request.delivered_at)
    emit(event_type, key=request.request_id, occurred_at=ts, data=data)


def emit_knowledge_extracted(call_id: str, owner: str, items_created: int) -> None:
    """``knowledge_extracted`` when an extraction stored items (``knowledge.signals``); nothing otherwise."""
    if items_created:
        emit(
            "knowledge_extracted",
            key=call_id,
            data={"call_id": call_id, "owner": owner, "items_created": items_created},
        )


def _call_data(call: Call, *fields: str) -> dict[str, Any]:
    data: dict[str, Any] = {"call_id": call.call_id, "caller": call.caller, "callee": call.callee}
    for name in fields:
        value = getattr(call, name)
        data[name] = _iso(value) if isinstance(value, datetime) or name in ("started", "answered", "ended") else value
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
