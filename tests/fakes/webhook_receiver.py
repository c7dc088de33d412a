"""A webhook receiver on loopback: records raw bodies and headers, answers scripted status codes."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.http_server import LocalHttpServer

__all__ = ["WebhookReceiver"]


class WebhookReceiver(LocalHttpServer):
    """``POST /hook``: answers ``statuses`` in order (then 200), after ``stall_s`` seconds if set."""

    def __init__(self, statuses: list[int] | None = None, *, stall_s: float = 0.0) -> None:
        super().__init__()
        self.statuses = list(statuses or [])
        self.stall_s = stall_s
        self.bodies: list[bytes] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/hook", self.hook)]

    async def hook(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())  # the raw bytes, as a receiver must verify them
        await self.record(request)
        if self.stall_s:
            await self.stall(self.stall_s)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "receiver failed")
