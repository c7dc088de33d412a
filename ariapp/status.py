"""The ARI app's own small HTTP server on loopback: ``/health``, ``/ready``, ``/status``, ``/metrics``.

``/status`` is JSON for operators and tests: active calls and sessions, tasks the app owns, media
sockets open, clock lateness. ``/ready`` is 200 only while the ARI websocket is connected, the models
are loaded and Redis (the event stream, HITL replies, post-call jobs) answers a ``PING``; each probe
pings anew, so readiness returns on the first probe after Redis does. ``/metrics`` is the Prometheus
text format (:mod:`ariapp.metrics`); like the rest it listens on loopback only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ariapp import metrics

if TYPE_CHECKING:
    from ariapp.app import App


def status_document(app: App) -> dict:
    return {
        "instance": app.settings.core.instance,
        "ari_connected": app.connected.is_set(),
        "active_calls": len(app.tracker.calls),
        "calls_finishing": app.tracker.finishing,
        "ai_sessions": len(app.sessions),
        "media_sockets": sum(1 for s in app.sessions.values() if s.media.local_port is not None),
        "clock_ticks_registered": len(app.clock),
        "clock_late_ticks": app.clock.late_ticks,
        "clock_interval_ms": app.clock.interval_percentiles(),
        "owned_tasks": len(app._tasks),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "calls_finished": app.tracker.finished,
        "ari_requests": app.ari.requests_total,
        "models_ready": app.models_ready.is_set(),
    }


async def serve_status(app: App, host: str, port: int) -> web.AppRunner:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    redis_ok = _redis_probe(app.settings.core.redis_url) if _needs_redis(app) else None

    async def ready(_request: web.Request) -> web.Response:
        checks = {"ari": app.connected.is_set(), "models": app.models_ready.is_set()}
        if redis_ok is not None:
            checks["redis"] = await redis_ok()
        ok = all(checks.values())
        return web.json_response({"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503)

    async def metrics_view(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(status_document(app))

    server = web.Application()
    server.add_routes(
        [
            web.get("/health", health),
            web.get("/ready", ready),
            web.get("/status", status),
            web.get("/metrics", metrics_view),
        ]
    )
    unregister = metrics.register(app)
    runner = web.AppRunner(server, access_log=None)
    runner.app.on_cleanup.append(lambda _server: _call(unregister))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _call(function) -> None:
    function()


def _needs_redis(app: App) -> bool:
    return app.settings.events or app.settings.extract_after_call


def _redis_probe(url: str, timeout: float = 1.0):
    """A ``PING`` on a single attempt, bounded by ``timeout``: whoever polls /ready does the retrying."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )

    async def ping() -> bool:
        try:
            async with asyncio.timeout(timeout):
                return bool(await client.ping())
        except (TimeoutError, aioredis.RedisError, OSError):
            return False

    return ping
