"""Admin of the webhooks: endpoints (secret shown once), the outbox, deliveries with "retry dead"."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from webconsole.webhooks.actions import do_retry_deliveries
from webconsole.webhooks.models import Delivery, OutboxEvent, WebhookEndpoint, new_secret


def _show_secret_once(request: HttpRequest, endpoint: WebhookEndpoint) -> None:
    messages.warning(
        request, f"Signing secret of “{endpoint.name}”: {endpoint.secret} — copy it now, it will not be shown again."
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "events", "active", "include_full_numbers", "created")
    list_filter = ("active", "include_full_numbers")
    search_fields = ("name", "url")
    fields = ("name", "url", "events", "active", "include_full_numbers")  # never the secret
    actions = ["rotate_secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            _show_secret_once(request, obj)

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint.secret = new_secret()
            endpoint.save(update_fields=["secret"])
            _show_secret_once(request, endpoint)


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("uuid", "type", "key", "occurred_at", "created")
    list_filter = ("type",)
    search_fields = ("uuid", "key")
    readonly_fields = ("uuid", "type", "key", "payload", "occurred_at", "created")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code", "delivered_at")
    list_filter = ("status", "endpoint")
    search_fields = ("event__uuid", "event__key", "last_error")
    raw_id_fields = ("event",)
    readonly_fields = ("attempts", "last_attempt_at", "last_status_code", "last_error", "delivered_at", "created")
    actions = ["retry_dead"]

    @admin.action(description="Retry dead deliveries")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = do_retry_deliveries(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} dead deliveries queued again.", messages.SUCCESS)
