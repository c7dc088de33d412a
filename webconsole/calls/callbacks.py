"""Click-to-call from the console: the operator's phone rings first, then the caller's (zulip style).

:func:`check_callback` says why a call-back cannot be asked for (shown to the operator as is);
:func:`do_request_callback` stores the new call (linked to the earlier one) and its :class:`Callback`,
and after the commit RPUSHes the request onto ``aipbx:<instance>:callbacks``, the list the ARI app
BLPOPs (``ariapp.calls.callback``) — the HITL replies' path, the other way round. What happens next
(the operator's phone rings, the caller's rings, they talk, or why not) comes back as
``callback.status`` events, applied by :func:`apply_callback_event` in the ingest transaction.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from contract import BadRequest, CallbackRequest, callback_requests_key
from webconsole.calls import access
from webconsole.calls.models import Call, Callback, CallbackStatus, CallState

log = logging.getLogger(__name__)
REQUEST_TTL_S = 120  # the list expires: a request nobody took is stale long before (ariapp MAX_AGE_S)

#: Why a call-back failed (``CallbackStatus`` events), as the operator reads it.
FAILURES = {
    "operator_unregistered": gettext_lazy(
        "Your phone is not registered: switch it on (or check its SIP account) and try again."
    ),
    "operator_no_answer": gettext_lazy("Your phone did not answer."),
    "operator_busy": gettext_lazy("Your phone is busy."),
    "operator_declined": gettext_lazy("You declined the call on your phone."),
    "operator_hung_up": gettext_lazy("You hung up before the caller answered."),
    "caller_busy": gettext_lazy("The caller's line is busy."),
    "caller_no_answer": gettext_lazy("The caller did not answer."),
    "caller_declined": gettext_lazy("The caller declined the call."),
    "caller_unreachable": gettext_lazy("The caller's number cannot be reached."),
    "no_outside_line": gettext_lazy("This number is outside the PBX and no outside line is configured."),
    "expired": gettext_lazy("The phone system took the request too late; try again."),
    "invalid": gettext_lazy("Your extension is not a phone of this PBX."),
    "error": gettext_lazy("The phone system failed to place the call."),
}


class CallbackError(Exception):
    """A call-back that cannot be asked for now; ``str(error)`` is shown to the operator as is."""


def callback_number(call: Call) -> str:
    """Who to call back for ``call``: the number noted on the call, else the number that called."""
    raw = call.callback_number or call.caller
    return re.sub(r"[\s()-]", "", raw or "")


def check_callback(user: Any, call: Call) -> tuple[str, str]:
    """``(operator's extension, number to call)``, or the reason it cannot be done.

    Raises:
        CallbackError: the operator has no phone, or the call has no number to call back.
    """
    operator = access.operator_of(user)
    extension = operator.extension.strip() if operator else ""
    if not extension:
        raise CallbackError(
            gettext("You have no phone extension to ring: ask an admin to set it in your operator profile.")
        )
    number = callback_number(call)
    if not number:
        raise CallbackError(gettext("This call has no number to call back."))
    if not re.fullmatch(r"\+?[0-9]{2,20}", number):
        raise CallbackError(gettext("%(number)s is not a number that can be dialled.") % {"number": number})
    if number == extension:
        raise CallbackError(gettext("That is your own phone."))
    return extension, number


def do_request_callback(user: Any, call: Call) -> Callback:
    """Store the new call and its call-back, then ask the ARI app to place it (after the commit).

    Raises:
        CallbackError: see :func:`check_callback`.
    """
    extension, number = check_callback(user, call)
    callback_id = uuid.uuid4().hex
    try:
        request = CallbackRequest(
            callback_id=callback_id,
            call_id=f"{settings.AIPBX_INSTANCE}-cb-{callback_id[:16]}",
            operator_ext=extension,
            number=number,
            callee=call.callee,
            callback_of=call.call_id,
            requested_at=time.time(),
        )
    except BadRequest as exc:
        raise CallbackError(gettext("This call cannot be called back: %(error)s") % {"error": exc}) from exc
    with transaction.atomic():
        new = Call.objects.create(
            call_id=request.call_id,
            caller=number,
            callee=call.callee,
            state=CallState.RINGING,
            started=timezone.now(),
            callback_of=call,
        )
        callback = Callback.objects.create(
            callback_id=callback_id, call=new, operator=user, operator_ext=extension, number=number
        )
        transaction.on_commit(lambda: _push(request))
    log.info("call-back %s: %s rings, then %s (for %s)", callback_id, extension, number, call.call_id)
    return callback


def push_request(key: str, payload: str) -> None:
    """Append a request to a list the ARI app pops (call-backs, transfers); the list expires, so a
    request nobody took does not linger.

    Raises:
        redis.RedisError, OSError: Redis did not take it."""
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    pipe = client.pipeline(transaction=True)
    pipe.rpush(key, payload)
    pipe.expire(key, REQUEST_TTL_S)
    pipe.execute()


def _push(request: CallbackRequest) -> None:
    try:
        push_request(callback_requests_key(settings.AIPBX_INSTANCE), request.to_json())
    except (redis.RedisError, OSError) as exc:
        log.error("call-back %s could not be sent to the ARI app: %r", request.callback_id, exc)
        Callback.objects.filter(callback_id=request.callback_id).update(status=CallbackStatus.FAILED, reason="error")
        Call.objects.filter(call_id=request.call_id).update(
            state=CallState.ENDED, termination_reason="error", ended=timezone.now()
        )


def apply_callback_event(call: Call, data: dict[str, Any]) -> None:
    """A ``callback.status`` event (in the ingest transaction; ``call`` is saved by the caller)."""
    status = str(data.get("status") or "")
    if status not in CallbackStatus.values:
        log.warning("unknown call-back status %r for %s", status, call.call_id)
        return
    Callback.objects.filter(call=call).update(status=status, reason=str(data.get("reason") or "")[:32])


def failure_text(reason: str) -> str:
    found = FAILURES.get(reason)
    return str(found) if found is not None else reason
