"""Put an AI call through to an operator's own phone ("take this call"), zulip style.

:func:`check_transfer` says why a call cannot be taken (shown to the operator as is);
:func:`do_request_transfer` stores the :class:`Transfer`, closes the call's open help requests (the
operator is taking the caller: nobody must answer them any more, even when the click came while the
AI was still waiting for the hold decision), and after the commit RPUSHes the request onto
``aipbx:<instance>:transfers``, the list the ARI app BLPOPs (``ariapp.calls.transfer``) — the
call-backs' path. :func:`operator_for` picks who takes a caller who asked for a person (the HITL
decision, ``webconsole.hitl.ingest``). What happens next comes back as ``transfer.status`` events,
applied by :func:`apply_transfer_event` in the ingest transaction.

Listening in is the same row and the same request with ``mode`` ``listen`` (:func:`do_request_listen`):
the operator's phone rings and hears the call, nobody hears them; the call's help requests stay open
(the AI goes on) until :func:`do_take_over` sends ``take_over`` for that row and closes them.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from contract import BadRequest, TransferRequest, transfer_requests_key
from contract.transfers import LISTEN, TAKE_OVER, TRANSFER
from webconsole.calls import access, presence
from webconsole.calls.callbacks import push_request
from webconsole.calls.models import (
    LISTEN_TAKEABLE,
    TRANSFER_ACTIVE,
    Call,
    CallState,
    Operator,
    Presence,
    Role,
    Transfer,
    TransferMode,
    TransferStatus,
)

log = logging.getLogger(__name__)

#: Why a transfer failed (``transfer.status`` events), as the operator reads it.
FAILURES = {
    "operator_unregistered": gettext_lazy(
        "Your phone is not registered: switch it on (or check its SIP account) and try again."
    ),
    "operator_no_answer": gettext_lazy("Your phone did not answer; the caller is back with the AI."),
    "operator_busy": gettext_lazy("Your phone is busy; the caller is back with the AI."),
    "operator_declined": gettext_lazy("You declined the call; the caller is back with the AI."),
    "operator_hung_up": gettext_lazy("You hung up before the caller was put through; the caller is back with the AI."),
    "caller_hung_up": gettext_lazy("The caller hung up before being put through."),
    "not_ai_call": gettext_lazy("The AI is no longer talking with this caller."),
    "busy": gettext_lazy("The AI could not hand this call over just now; try again."),
    "expired": gettext_lazy("The phone system took the request too late; try again."),
    "error": gettext_lazy("The phone system failed to put the call through."),
}


class TransferError(Exception):
    """A transfer that cannot be asked for now; ``str(error)`` is shown to the operator as is."""


def check_transfer(user: Any, call: Call) -> str:
    """The operator's extension to ring, or the reason the call cannot be taken.

    Raises:
        TransferError: the operator has no phone, the AI is not talking with the caller, or the call
            is being put through already.
    """
    operator = access.operator_of(user)
    extension = operator.extension.strip() if operator else ""
    if not extension:
        raise TransferError(
            gettext("You have no phone extension to ring: ask an admin to set it in your operator profile.")
        )
    if call.state != CallState.AI:
        raise TransferError(gettext("Only a call the AI is answering now can be taken."))
    if extension == call.caller:
        raise TransferError(gettext("That is your own phone."))
    active = call.transfers.filter(status__in=TRANSFER_ACTIVE).first()
    if active is not None and active.mode == TransferMode.LISTEN:
        raise TransferError(gettext("An operator is listening in on this call."))
    if active is not None:
        raise TransferError(gettext("This call is already being put through to an operator."))
    return extension


def operator_for(call: Call) -> Operator | None:
    """Who takes a caller who asked for a person: an operator of the callee (or an admin) who is
    available, with a console alive and a phone extension (not the caller's own); None if nobody."""
    assigned = Q(extensions__number=call.callee) | Q(role=Role.ADMIN) | Q(user__is_superuser=True)
    candidates = (
        presence.on_duty(Operator.objects.filter(status=Presence.AVAILABLE))
        .filter(assigned)
        .exclude(extension="")
        .exclude(extension=call.caller)
        .select_related("user")
        .distinct()
        .order_by("-last_seen")
    )
    return candidates.first()


def do_request_transfer(user: Any, call: Call, *, question: str = "", request_id: str = "") -> Transfer:
    """Store the transfer, close the call's open help requests, then ask the ARI app (after the commit).

    Raises:
        TransferError: see :func:`check_transfer`.
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        extension = check_transfer(user, call)
        transfer = _create(call, user, extension, question=question, request_id=request_id)
        call.save(update_fields=["hitl_status", "updated"])
        return transfer


def do_request_listen(user: Any, call: Call) -> Transfer:
    """Ring the operator's phone to hear the AI call unheard (after the commit); the AI goes on.

    Raises:
        TransferError: see :func:`check_transfer`.
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        extension = check_transfer(user, call)
        return _create(call, user, extension, mode=LISTEN)


def do_take_over(user: Any, call: Call) -> Transfer:
    """The operator listening in on ``call`` takes the caller from the AI: their open help requests
    close, and the ARI app bridges the operator's phone with the caller (after the commit).

    Raises:
        TransferError: this operator is not listening in on the call.
    """
    from webconsole.hitl.actions import do_close_for_transfer  # the HITL app owns its requests

    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        transfer = (
            call.transfers.select_for_update()
            .filter(mode=TransferMode.LISTEN, status__in=LISTEN_TAKEABLE, operator=user)
            .first()
        )
        if transfer is None or call.state != CallState.AI:
            raise TransferError(gettext("You are not listening in on this call."))
        request = _request(call, user, transfer.operator_ext, transfer_id=transfer.transfer_id, mode=TAKE_OVER)
        do_close_for_transfer(call, request.operator)
        call.save(update_fields=["hitl_status", "updated"])
        transaction.on_commit(lambda: _push(request))
        log.info("transfer %s: %s takes over %s", transfer.transfer_id, transfer.operator_ext, call.call_id)
        return transfer


def _request(call: Call, user: Any, extension: str, *, transfer_id: str, mode: str, **fields: Any) -> TransferRequest:
    name = (user.get_full_name() or user.get_username()) if user is not None else ""
    try:
        return TransferRequest(
            transfer_id=transfer_id,
            call_id=call.call_id,
            operator_ext=extension,
            operator=name[:80],
            requested_at=time.time(),
            mode=mode,
            **fields,
        )
    except BadRequest as exc:
        raise TransferError(gettext("This call cannot be put through: %(error)s") % {"error": exc}) from exc


def _create(
    call: Call, user: Any, extension: str, *, question: str = "", request_id: str = "", mode: str = TRANSFER
) -> Transfer:
    """In the caller's transaction, with ``call`` locked."""
    from webconsole.hitl.actions import do_close_for_transfer  # the HITL app owns its requests

    transfer_id = uuid.uuid4().hex
    request = _request(
        call, user, extension, transfer_id=transfer_id, mode=mode, question=question[:1000], request_id=request_id
    )
    transfer = Transfer.objects.create(
        transfer_id=transfer_id, call=call, operator=user, operator_ext=extension, mode=mode
    )
    if mode == TRANSFER:  # the operator takes the caller; a listener only may (do_take_over)
        do_close_for_transfer(call, request.operator)
    transaction.on_commit(lambda: _push(request))
    log.info("transfer %s (%s): %s, %s", transfer_id, mode, extension, call.call_id)
    return transfer


def do_transfer_for_person(call: Call, question: str, request_id: str) -> Transfer | None:
    """A caller asked for a person: put them through to an available operator's phone, if any
    (inside the ingest transaction, ``call`` locked); None: the help request takes its usual path."""
    if call.state != CallState.AI or call.transfers.filter(status__in=TRANSFER_ACTIVE).exists():
        return None
    operator = operator_for(call)
    if operator is None:
        return None
    return _create(call, operator.user, operator.extension.strip(), question=question, request_id=request_id)


def _push(request: TransferRequest) -> None:
    try:
        push_request(transfer_requests_key(settings.AIPBX_INSTANCE), request.to_json())
    except (redis.RedisError, OSError) as exc:
        log.error("transfer %s could not be sent to the ARI app: %r", request.transfer_id, exc)
        Transfer.objects.filter(transfer_id=request.transfer_id).update(
            status=TransferStatus.FAILED, reason="error", ended=timezone.now()
        )


def apply_transfer_event(call: Call, data: dict[str, Any]) -> None:
    """A ``transfer.status`` event (in the ingest transaction; ``call`` is saved by the caller)."""
    status = str(data.get("status") or "")
    if status not in TransferStatus.values:
        log.warning("unknown transfer status %r for %s", status, call.call_id)
        return
    changes: dict[str, Any] = {"status": status, "reason": str(data.get("reason") or "")[:32]}
    if status == TransferStatus.CONNECTED:
        changes["connected"] = timezone.now()
    elif status in (TransferStatus.ENDED, TransferStatus.FAILED):
        changes["ended"] = timezone.now()
    Transfer.objects.filter(call=call, transfer_id=str(data.get("transfer_id") or "")).update(**changes)


def failure_text(reason: str) -> str:
    found = FAILURES.get(reason)
    return str(found) if found is not None else reason
