"""Health probes and Prometheus metrics.

``/health`` answers as long as the process can serve a request (liveness);
``/ready`` also proves PostgreSQL and Redis answer (readiness; the answer is kept for
``AIPBX_READY_CACHE_S``, so hits cost no new connections). Both are async
so a probe never waits for Django's sync thread.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from webconsole.core.readiness import OK, check_all_cached


@never_cache
@require_safe
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
async def ready(request: HttpRequest) -> JsonResponse:
    checks = await check_all_cached(
        settings.DATABASES["default"],
        settings.AIPBX_REDIS_URL,
        settings.AIPBX_READY_TIMEOUT,
        settings.AIPBX_READY_CACHE_S,
    )
    if all(result == OK for result in checks.values()):
        return JsonResponse({"status": "ok", "checks": checks})
    return JsonResponse({"status": "unavailable", "checks": checks}, status=503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format for ``Authorization: Bearer <AIPBX_METRICS_TOKEN>``; no token set, no metrics.

    The counts (calls, HITL requests, knowledge, webhook deliveries) are the business's own: a
    console reachable from the internet must not hand them to anyone who asks.
    """
    from prometheus_client import CONTENT_TYPE_LATEST

    from webconsole.core.metrics import render

    token = settings.AIPBX_METRICS_TOKEN
    if not token:
        return HttpResponse(
            "metrics are off: set AIPBX_METRICS_TOKEN and give Prometheus the token\n",
            status=403,
            content_type="text/plain",
        )
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
