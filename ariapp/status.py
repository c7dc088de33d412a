"""The ARI app's own small HTTP server on loopback: ``/health``, ``/ready`` and ``/status``.

``/status`` is JSON for operators and tests: active calls and sessions, tasks the app owns, media
sockets open, clock lateness. ``/ready`` is 200 only while the ARI websocket is connected.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ariapp.app import App


def status_document(app: App) -> dict:
    return {
        "instance": app.settings.instance,
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

    async def ready(_request: web.Request) -> web.Response:
        ok = app.connected.is_set() and app.models_ready.is_set()
        return web.json_response({"status": "ok" if ok else "unavailable",
                                  "ari": app.connected.is_set(), "models": app.models_ready.is_set()},
                                 status=200 if ok else 503)

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(status_document(app))

    server = web.Application()
    server.add_routes([web.get("/health", health), web.get("/ready", ready), web.get("/status", status)])
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
