"""A question the AI could not answer alone, put to the operators of the called extension.

Theory of operation (the ARI app owns the caller, this app owns the operator side):

    hitl.requested ─► waiting ──claim──► claimed ──answer──► answered ──hitl.spoken──► delivered
                   │     └────────────answer (claims too)───────┘
                   └► away                 (no operator available or busy: the AI said the away message)
    waiting/claimed ──hitl.timeout──► timed_out   (the caller was told we will call back)
    waiting/claimed ──hitl.cancelled─► cancelled  (the caller hung up during hold)

The row lives in PostgreSQL, so a restart of the web process during a hold loses nothing: the
ARI app keeps the caller on hold and waits for the reply on its Redis list.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from webconsole.calls.models import Call


class Reason(models.TextChoices):
    LOW_CONFIDENCE = "low_confidence", gettext_lazy("Low confidence")
    ASKED_FOR_PERSON = "asked_for_person", gettext_lazy("Asked for a person")
    SENSITIVE_TOPIC = "sensitive_topic", gettext_lazy("Sensitive topic")


class RequestStatus(models.TextChoices):
    WAITING = "waiting", gettext_lazy("Waiting")
    CLAIMED = "claimed", gettext_lazy("Claimed")
    ANSWERED = "answered", gettext_lazy("Answered")
    DELIVERED = "delivered", gettext_lazy("Delivered")
    TIMED_OUT = "timed_out", gettext_lazy("Timed out")
    CANCELLED = "cancelled", gettext_lazy("Caller hung up")
    AWAY = "away", gettext_lazy("Nobody available")


#: The caller is still on hold: an operator may claim or answer.
OPEN = (RequestStatus.WAITING, RequestStatus.CLAIMED)


class HitlRequest(models.Model):
    request_id = models.CharField(max_length=64, unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="hitl_requests")
    question = models.TextField(blank=True, default="")
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    retrieved = models.JSONField(default=list, blank=True)
    recent_turns = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=16, blank=True, default="")
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.WAITING)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="hitl_claims"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    answer_raw = models.TextField(blank=True, default="")
    answer_text = models.TextField(blank=True, default="", help_text="The polished answer the AI speaks.")
    answered_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    saved_item = models.ForeignKey(
        "knowledge.KnowledgeItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True, default="", help_text="Why it ended as it did (timeout, hang-up).")
    created = models.DateTimeField(default=timezone.now, help_text="When the AI asked (the event's time).")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status", "-created"], name="hitl_status_created")]

    def __str__(self) -> str:
        return f"{self.request_id} ({self.status}): {self.question[:40]}"

    @property
    def callee(self) -> str:
        """The extension the request belongs to (``access`` and the API's ``OwnerVisible`` read it)."""
        return self.call.callee

    @property
    def is_open(self) -> bool:
        return self.status in OPEN
