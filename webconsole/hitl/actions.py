"""What an operator does with a help request: claim it, answer it, save the answer as knowledge.

Every change locks the request row (``select_for_update``) and checks its status under the lock,
so two operators acting at once are serialised: one wins, the other gets a :class:`HitlError`
whose message says why (who has it, or that the caller is gone). The reply to the ARI app and the
live updates leave only after the commit (``transaction.on_commit``).

Callers check visibility first (``queries.visible_requests``); these functions trust the id.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from aipbx.privacy import mask_pii
from knowledge.actions import do_add_item
from knowledge.models import KnowledgeItem, Source, Status
from webconsole.calls.models import Call, HitlStatus
from webconsole.hitl import replies
from webconsole.hitl.models import OPEN, HitlRequest, RequestStatus
from webconsole.hitl.polish import language_of, polish

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 500


class HitlError(Exception):
    """An operator action that cannot be done now; ``str(error)`` is shown to the operator as is.

    HitlError
     ├── BadAnswer       the answer is empty or too long (fix and resend)
     ├── TakenByOther    another operator claimed or answered it first
     └── CallerGone      the caller hung up, or was already told we will call back
    """


class BadAnswer(HitlError):
    pass


class TakenByOther(HitlError):
    pass


class CallerGone(HitlError):
    pass


def check_answer(text: str) -> str:
    text = text.strip()
    if not text:
        raise BadAnswer(gettext("Type an answer first."))
    if len(text) > MAX_ANSWER_CHARS:
        raise BadAnswer(
            gettext("Keep the answer to %(limit)d characters (it has %(length)d).")
            % {"limit": MAX_ANSWER_CHARS, "length": len(text)}
        )
    return text


def check_open(request: HitlRequest, user: Any) -> None:
    """Raise the error an operator gets when ``request`` is no longer theirs to answer."""
    status = request.status
    if status == RequestStatus.CANCELLED:
        raise CallerGone(gettext("The caller has hung up; the answer can no longer be delivered."))
    if status in (RequestStatus.TIMED_OUT, RequestStatus.AWAY):
        raise CallerGone(gettext("The caller was already told we'll call back; follow up on the call page instead."))
    if status in (RequestStatus.ANSWERED, RequestStatus.DELIVERED):
        raise TakenByOther(gettext("%(who)s already answered this request.") % {"who": _who(request, user)})
    if status == RequestStatus.CLAIMED and request.claimed_by_id != user.pk:
        raise TakenByOther(gettext("%(who)s has already claimed this request.") % {"who": _who(request, user)})


def do_claim(request_id: str, user: Any) -> HitlRequest:
    """Claim a waiting request for ``user`` (claiming one's own claim again is a no-op)."""
    with transaction.atomic():
        request = _locked(request_id)
        check_open(request, user)
        if request.status == RequestStatus.CLAIMED:
            return request
        request.status, request.claimed_by, request.claimed_at = RequestStatus.CLAIMED, user, timezone.now()
        request.save(update_fields=["status", "claimed_by", "claimed_at", "updated"])
        transaction.on_commit(lambda: replies.notify(request, "hitl.update"))
    return request


def do_answer(request_id: str, user: Any, text: str) -> HitlRequest:
    """Answer a request ``user`` claimed, or a waiting one (claimed and answered at once).

    The answer is polished before the row is locked (the model may take seconds); the status is
    checked again under the lock, so of two operators answering at once exactly one wins.

    Raises:
        HitlError: see the class; nothing is changed and nothing is sent.
    """
    text = check_answer(text)
    request = HitlRequest.objects.select_related("call", "claimed_by").get(request_id=request_id)
    check_open(request, user)  # fail fast, before asking the model
    polished = polish(request.question, text, request.language)
    with transaction.atomic():
        request = _locked(request_id)
        check_open(request, user)
        now = timezone.now()
        request.status = RequestStatus.ANSWERED
        request.claimed_by, request.claimed_at = user, request.claimed_at or now
        request.answer_raw, request.answer_text, request.answered_at = text, polished.text, now
        request.save(
            update_fields=["status", "claimed_by", "claimed_at", "answer_raw", "answer_text", "answered_at", "updated"]
        )
        reply = {"kind": "answer", "text": polished.text, "operator": user.get_username()}
        transaction.on_commit(lambda: replies.push_reply(request_id, reply))
        transaction.on_commit(lambda: replies.notify(request, "hitl.update"))
    log.info("HITL %s answered by %s (polished by %s)", request_id, user.get_username(), polished.by)
    return request


def knowledge_text(request: HitlRequest) -> str:
    """The fact stored for an answer: the caller's question (PII masked) and the operator's own words.

    The question is the caller's speech and may carry their phone or card number; the answer is
    the operator's and is kept as typed (it may rightly give the office's number).
    """
    question = mask_pii(request.question.strip())
    if language_of(request.language) == "ko":
        return f"질문: {question}\n답변: {request.answer_raw.strip()}"
    return f"Question: {question}\nAnswer: {request.answer_raw.strip()}"


def do_save_to_knowledge(request_id: str, user: Any) -> KnowledgeItem:
    """Store the answer in the callee's knowledge, pending review, with provenance ``hitl`` and the call.

    Saving twice returns the first item.

    Raises:
        HitlError: the request has no answer yet.
        RetrievalError: the embedding model failed (the answer itself is unaffected).
    """
    request = HitlRequest.objects.select_related("call", "saved_item").get(request_id=request_id)
    if request.saved_item is not None:
        return request.saved_item
    if not request.answer_raw:
        raise HitlError(gettext("Answer the request before saving it as knowledge."))
    [result, *_] = do_add_item(
        request.call.callee,
        knowledge_text(request),
        source=Source.HITL,
        status=Status.PENDING,
        source_call_id=request.call.call_id,
        source_speaker="operator",
        edited_by=user,
    )
    HitlRequest.objects.filter(pk=request.pk, saved_item__isnull=True).update(saved_item=result.item)
    return result.item


def _locked(request_id: str) -> HitlRequest:
    # No join to claimed_by here: after waiting for the lock, PostgreSQL re-reads the locked row but
    # not an outer-joined one, so a joined claimer would be the stale (empty) one of before the wait.
    return HitlRequest.objects.select_for_update().select_related("call").get(request_id=request_id)


def _who(request: HitlRequest, user: Any) -> str:
    if request.claimed_by is None:
        return gettext("Another operator")
    if request.claimed_by_id == user.pk:
        return gettext("You")
    return request.claimed_by.get_username()


TRANSFERRED_NOTE = "Put through to {who}'s phone: the operator took the caller."


def do_close_for_transfer(call: Call, who: str) -> int:
    """An operator takes the caller on their phone: the call's open help requests are settled (in the
    caller's transaction, ``call`` locked; it sets ``call.hitl_status``, the caller saves). Returns how many."""
    closed = 0
    for request in HitlRequest.objects.select_for_update().filter(call=call, status__in=OPEN):
        request.status, request.note = RequestStatus.DELIVERED, TRANSFERRED_NOTE.format(who=who or "an operator")
        request.save(update_fields=["status", "note", "updated"])
        request.call = call
        transaction.on_commit(lambda request=request: replies.notify(request, "hitl.update"))
        closed += 1
    if closed:
        call.hitl_status = HitlStatus.RESOLVED
    return closed
