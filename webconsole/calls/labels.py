"""What the console shows for the codes calls carry (speakers, conversation states, outcomes).

The codes come from the ARI app's events and stay English in the database, the API and the
webhooks; pages show them through these labels, in the reader's language. The same tables go to
the browser (:func:`js_strings`), so a live update is worded like the page it lands on. An unknown
code is shown as it is.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from webconsole.calls.models import CallState

SPEAKERS: dict[str, Promise] = {
    "caller": gettext_lazy("caller"),
    "callee": gettext_lazy("callee"),
    "ai": gettext_lazy("AI"),
    "operator": gettext_lazy("operator"),
}

CONVERSATION_STATES: dict[str, Promise] = {
    "idle": gettext_lazy("idle"),
    "greeting": gettext_lazy("greeting"),
    "listening": gettext_lazy("listening"),
    "thinking": gettext_lazy("thinking"),
    "speaking": gettext_lazy("speaking"),
    "holding": gettext_lazy("on hold for a person"),
    "paused": gettext_lazy("paused"),
    "voicemail": gettext_lazy("leaving a message"),
    "transferring": gettext_lazy("putting the caller through to a person"),
    "ended": gettext_lazy("ended"),
}

#: ``Call.termination_reason`` (``ariapp.metrics.OUTCOMES``).
OUTCOMES: dict[str, Promise] = {
    "caller_hangup": gettext_lazy("Caller hung up"),
    "callee_hangup": gettext_lazy("Callee hung up"),
    "ai_hangup": gettext_lazy("AI ended the call"),
    "caller_cancelled": gettext_lazy("Caller gave up before an answer"),
    "not_answered": gettext_lazy("Not answered"),
    "app_restart": gettext_lazy("Ended by an app restart"),
    "asterisk_restart": gettext_lazy("Ended by an Asterisk restart"),
    "events_lost": gettext_lazy("Events lost"),
    "error": gettext_lazy("Error"),
    "limit_per_caller": gettext_lazy("Refused: too many calls from this caller"),
    "limit_total": gettext_lazy("Refused: too many calls at once"),
    "rtp_timeout": gettext_lazy("Audio stopped (RTP timeout)"),
    # a call-back (webconsole.calls.callbacks.FAILURES says the same to the operator in full)
    "operator_hangup": gettext_lazy("Operator hung up"),
    "operator_unregistered": gettext_lazy("Call-back failed: the operator's phone is not registered"),
    "operator_no_answer": gettext_lazy("Call-back failed: the operator did not answer"),
    "operator_busy": gettext_lazy("Call-back failed: the operator's phone was busy"),
    "operator_declined": gettext_lazy("Call-back failed: the operator declined"),
    "operator_hung_up": gettext_lazy("Call-back failed: the operator hung up first"),
    "caller_busy": gettext_lazy("Call-back failed: the caller was busy"),
    "caller_no_answer": gettext_lazy("Call-back failed: the caller did not answer"),
    "caller_declined": gettext_lazy("Call-back failed: the caller declined"),
    "caller_unreachable": gettext_lazy("Call-back failed: the caller cannot be reached"),
    "no_outside_line": gettext_lazy("Call-back failed: no outside line"),
    "expired": gettext_lazy("Call-back failed: the request expired"),
    "invalid": gettext_lazy("Call-back failed: not a phone of this PBX"),
}


def label(table: dict[str, Promise], code: str) -> str:
    """``code``'s label in the active language, or ``code`` itself when the table has none."""
    found = table.get(code)
    return str(found) if found is not None else code


def js_strings() -> dict[str, object]:
    """The texts the console's scripts write into pages (console/live.js, alerts.js, hitl.js)."""
    from webconsole.hitl.models import Reason, RequestStatus  # the HITL app reads calls, not the reverse

    def table(entries: dict[str, Promise]) -> dict[str, str]:
        return {code: str(text) for code, text in entries.items()}

    return {
        "not_available": gettext("Not available."),
        "reconnecting": gettext("Reconnecting…"),
        "ended": str(CallState.ENDED.label),
        "person": gettext("person"),
        "interrupted": gettext("interrupted"),
        "used_passage": gettext("the AI answered from this passage"),
        "answer_after": gettext("answer after %(ms)s ms"),
        "caller_waiting": gettext("Caller waiting"),
        "speakers": table(SPEAKERS),
        "conversation_states": table(CONVERSATION_STATES),
        "call_states": {code: str(text) for code, text in CallState.choices},
        "request_statuses": {code: str(text) for code, text in RequestStatus.choices},
        "reasons": {code: str(text) for code, text in Reason.choices},
    }
