"""Webhook endpoints, the outbox of events, and one delivery per (endpoint, event).

Theory of operation (a transactional outbox, see ``webconsole/README.md`` "Webhooks"):

    ingest transaction ── emit() ──► OutboxEvent + Delivery(pending) per subscribed endpoint
         └─ on commit ──► deliver_webhook_task(delivery_id)      (and every 30 s the sweep)
    pending ──POST 2xx──► delivered
    pending ──fail──► pending (next_attempt_at = now + 10/20/40 s) … after 1 + 3 attempts ──► dead
    dead ──retry (console, admin)──► pending

The rows are written in the same transaction as the fact they report, so a rolled-back ingest
emits nothing and a committed one is never lost: if the process dies before the task is queued,
the sweep finds the pending row. Delivery is at least once; ``OutboxEvent.uuid`` (the
``X-AIPBX-Delivery`` header) lets receivers make the effect exactly once.
"""

from __future__ import annotations

import secrets
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

EVENT_TYPES = (
    "call_started",
    "call_ended",
    "call_failed",
    "ai_activated",
    "call_transferred",
    "hitl_requested",
    "hitl_resolved",
    "knowledge_extracted",
)


def new_secret() -> str:
    """A signing secret: 256 random bits, URL-safe, with a prefix that makes a leaked one recognisable."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="http(s) URL that receives a POST per event.")
    secret = models.CharField(
        max_length=100,
        default=new_secret,
        editable=False,
        help_text="HMAC-SHA256 key of X-AIPBX-Signature; shown once, when created or rotated.",
    )
    events = models.JSONField(
        default=list, blank=True, help_text=f"Event types to send (empty = all): {', '.join(EVENT_TYPES)}."
    )
    active = models.BooleanField(default=True)
    include_full_numbers = models.BooleanField(
        default=False, help_text="Send callers' full phone numbers (otherwise only their last 4 digits)."
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def clean(self) -> None:
        if not isinstance(self.events, list) or not all(isinstance(e, str) for e in self.events):
            raise ValidationError({"events": 'A JSON list of event type names, e.g. ["call_ended"].'})
        unknown = sorted(set(self.events) - set(EVENT_TYPES))
        if unknown:
            raise ValidationError({"events": f"Unknown event types: {', '.join(unknown)}."})

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.events or event_type in self.events)


class OutboxEvent(models.Model):
    """One fact to report, stored with the fact. ``key`` (type + subject) makes each fact one event."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=32, choices=[(t, t) for t in EVENT_TYPES])
    key = models.CharField(max_length=200, unique=True, help_text="e.g. call_ended:<call id>; a replay is a no-op.")
    payload = models.JSONField(default=dict, help_text="The event's data, numbers unmasked (masked per endpoint).")
    occurred_at = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.key.partition(':')[2]} ({self.uuid})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending")
    DELIVERED = "delivered", gettext_lazy("Delivered")
    DEAD = "dead", gettext_lazy("Dead")


class Delivery(models.Model):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhooks_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint.name}: {self.status}"
