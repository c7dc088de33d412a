"""The console's webhooks page (admins only): endpoints, recent deliveries (dead first), retry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from webconsole.calls import access
from webconsole.webhooks.actions import do_retry_deliveries
from webconsole.webhooks.models import Delivery, DeliveryStatus, WebhookEndpoint

RECENT = 100


def _require_admin(request: HttpRequest) -> None:
    if not access.is_admin(request.user):
        raise PermissionDenied("Webhooks are managed by admins.")


@login_required
def index(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    endpoints = WebhookEndpoint.objects.annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
        dead=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DEAD)),
    )
    dead_first = Case(When(status=DeliveryStatus.DEAD, then=Value(0)), default=Value(1), output_field=IntegerField())
    deliveries = Delivery.objects.select_related("endpoint", "event").order_by(dead_first, "-created", "-id")[:RECENT]
    return render(request, "webhooks/index.html", {"endpoints": endpoints, "deliveries": deliveries})


@login_required
@require_POST
def retry(request: HttpRequest, delivery_id: int) -> HttpResponse:
    _require_admin(request)
    delivery = get_object_or_404(Delivery, pk=delivery_id)
    if do_retry_deliveries([delivery.pk]):
        messages.success(request, gettext("Delivery %(id)d queued again.") % {"id": delivery.pk})
    else:
        messages.info(request, gettext("Delivery %(id)d is not dead; nothing to retry.") % {"id": delivery.pk})
    return HttpResponseRedirect(reverse("webhooks:index"))
