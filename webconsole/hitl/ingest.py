"""The ARI app's ``hitl.*`` events applied to help requests (called by ``webconsole.calls.ingest``).

:func:`apply_hitl_event` runs inside the ingest transaction with the call row locked; it sets
``call.hitl_status`` on the object (the caller saves it) and queues the reply to the ARI app and
the live updates with ``transaction.on_commit``, so a rolled-back event sends nothing.

``hitl.requested`` decides at once: if at least one operator of the called extension, or an
admin, is ``available`` or ``busy`` with a console page alive (a heartbeat within
``AIPBX_PRESENCE_TIMEOUT_S``, :mod:`webconsole.calls.presence`) the request waits (reply
``queued``) — unless the caller asked for a person and an available operator has a phone: then
the caller is put through to it (reply ``transfer``, :mod:`webconsole.calls.transfers`); otherwise
it is ``away`` (reply ``away``) and the call becomes an unresolved item for
later follow-up. An operator who chose "available" and then closed the browser or lost the network
is not waited for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q

import contract
from webconsole.calls import presence
from webconsole.calls.ingest import BadEvent
from webconsole.calls.models import LISTEN_TAKEABLE, TRANSFER_ACTIVE, Call, HitlStatus, Operator, Role, TransferMode
from webconsole.calls.transfers import do_transfer_for_person
from webconsole.hitl import replies
from webconsole.hitl.actions import do_close_for_transfer
from webconsole.hitl.models import OPEN, HitlRequest, Reason, RequestStatus
from webconsole.webhooks.actions import emit_hitl_event

if TYPE_CHECKING:
    from webconsole.calls.ingest import Event

log = logging.getLogger(__name__)


def apply_hitl_event(call: Call, event: Event) -> None:
    """Apply one ``hitl.*`` event to ``call`` (saved by the caller).

    Raises:
        BadEvent: the event lacks its ``request_id`` (dead-lettered by the stream reader).
    """
    handler = _HANDLERS.get(event.type)
    if handler is None:
        log.info("ignoring unknown HITL event %s (%s)", event.type, event.event_id)
        return
    request_id = str(event.data.get("request_id") or "")
    if not request_id or len(request_id) > 64:
        raise BadEvent(f"{event.type} {event.event_id} lacks a valid request_id")
    handler(call, event, request_id)


def operators_on_duty(callee: str) -> int:
    """Operators assigned to ``callee`` (or admins) who are available or busy, with a console alive."""
    duty = presence.on_duty(Operator.objects.all())
    assigned = Q(extensions__number=callee) | Q(role=Role.ADMIN) | Q(user__is_superuser=True)
    return duty.filter(assigned).distinct().count()


def _requested(call: Call, event: Event, request_id: str) -> None:
    data = event.data
    call.caller = call.caller or _text(data.get("caller"), 64)
    call.callee = call.callee or _text(data.get("callee"), 16)
    if HitlRequest.objects.filter(request_id=request_id).exists():
        log.info("HITL request %s was already recorded (event %s)", request_id, event.event_id)
        return
    reason = _text(data.get("reason"), 32)
    on_duty = operators_on_duty(call.callee) if call.callee else 0
    request = HitlRequest.objects.create(
        request_id=request_id,
        call=call,
        question=_text(data.get("question"), 4000),
        reason=reason if reason in Reason.values else "",
        detail=_text(data.get("detail"), 4000),
        confidence=_float(data.get("confidence")),
        retrieved=_dicts(data.get("retrieved")),
        recent_turns=_dicts(data.get("recent_turns")),
        language=_text(data.get("language"), 16),
        status=RequestStatus.WAITING if on_duty else RequestStatus.AWAY,
        created=event.ts,
    )
    reply: dict[str, Any]
    taken = call.transfers.filter(status__in=TRANSFER_ACTIVE).exclude(
        mode=TransferMode.LISTEN,
        status__in=LISTEN_TAKEABLE,  # a listener has not taken the caller (yet)
    )
    if taken.exists():
        # an operator took the call before this event arrived: the help request is settled already
        do_close_for_transfer(call, "")
        reply = {"kind": "transfer"}
    elif request.reason == Reason.ASKED_FOR_PERSON and (
        transfer := do_transfer_for_person(call, request.question, request_id)
    ):
        # the caller asked for a person and one is available with a phone: put them through
        reply = {"kind": "transfer", "operator": transfer.operator_ext}
    elif on_duty:
        reply = {"kind": "queued", "operators": on_duty}
    else:
        reply = {"kind": "away"}
        request.note = "Nobody was available; the caller heard the away message."
        request.save(update_fields=["note"])
        call.hitl_status = HitlStatus.UNRESOLVED
    emit_hitl_event(request, "hitl_requested", event.ts)
    transaction.on_commit(lambda: replies.push_reply(request_id, reply))
    transaction.on_commit(lambda: replies.notify(request, "hitl.request"))


def _spoken(call: Call, event: Event, request_id: str) -> None:
    request = _locked(call, request_id)
    if request is None:
        return
    request.status = RequestStatus.DELIVERED
    request.delivered_at = event.ts
    request.answer_text = request.answer_text or _text(event.data.get("text"), 4000)
    request.save(update_fields=["status", "delivered_at", "answer_text", "updated"])
    unanswered = (RequestStatus.AWAY, RequestStatus.TIMED_OUT, RequestStatus.CANCELLED)
    if not call.hitl_requests.filter(status__in=unanswered).exists():
        call.hitl_status = HitlStatus.RESOLVED  # an earlier unanswered question of the call still needs a follow-up
    emit_hitl_event(request, "hitl_resolved", event.ts)
    transaction.on_commit(lambda: replies.notify(request, "hitl.update"))


def _timeout(call: Call, event: Event, request_id: str) -> None:
    _close(call, request_id, RequestStatus.TIMED_OUT, "Nobody answered in time; the caller was told we'll call back.")


def _cancelled(call: Call, event: Event, request_id: str) -> None:
    why = _text(event.data.get("why"), 200)
    if why == "transfer":  # an operator took the caller on their phone before the hold began
        do_close_for_transfer(call, "")
        return
    _close(call, request_id, RequestStatus.CANCELLED, "The caller hung up" + (f" ({why})." if why else "."))


def _close(call: Call, request_id: str, status: str, note: str) -> None:
    request = _locked(call, request_id)
    if request is None:
        return
    if request.status not in (*OPEN, RequestStatus.ANSWERED):
        return  # already delivered or closed: a late event changes nothing
    request.status, request.note = status, note
    request.save(update_fields=["status", "note", "updated"])
    call.hitl_status = HitlStatus.UNRESOLVED  # the question is still open: a follow-up call is due
    transaction.on_commit(lambda: replies.notify(request, "hitl.update"))


def _locked(call: Call, request_id: str) -> HitlRequest | None:
    request = (
        HitlRequest.objects.select_for_update().select_related("call").filter(request_id=request_id, call=call).first()
    )
    if request is None:
        log.warning("HITL event for unknown request %s of call %s", request_id, call.call_id)
        return None
    request.call = call  # the caller's locked object, with the status we set
    return request


_HANDLERS = {
    contract.HitlRequested.TYPE: _requested,
    contract.HitlSpoken.TYPE: _spoken,
    contract.HitlTimeout.TYPE: _timeout,
    contract.HitlCancelled.TYPE: _cancelled,
}


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)][:50] if isinstance(value, list) else []
