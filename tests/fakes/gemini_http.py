"""A local server speaking the Gemini API's streaming endpoint, for the real ``google-genai`` client.

``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` answers with
server-sent events, each a ``GenerateContentResponse`` JSON object, the way
``generativelanguage.googleapis.com`` does: one candidate per chunk carrying a
text part, the last chunk with ``finishReason`` and ``usageMetadata``. Errors
use Google's JSON error body (``{"error": {"code", "message", "status"}}``).

Scriptable per test through ``server.script``; requests are recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.http_server import LocalHttpServer, sse_event

__all__ = ["FakeGemini", "GeminiScript"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class GeminiScript:
    """What the next ``streamGenerateContent`` calls answer.

    Attributes:
        deltas: Text of each streamed chunk, in order.
        delay_s: Pause between chunks.
        status: Answer this HTTP status with Google's error JSON instead of a stream.
        error_message: ``error.message`` of that answer.
        stall_s: Sleep before the response starts (headers included).
        stall_after_chunks: Sleep ``stall_s`` after this many chunks instead (mid-stream stall).
        block_reason: Answer one chunk with ``promptFeedback.blockReason`` and no candidates.
        finish_reason: ``finishReason`` of the last chunk (``"SAFETY"`` with no deltas = blocked answer).
    """

    deltas: list[str] = field(default_factory=lambda: ["Hello", ", this is", " the front desk."])
    delay_s: float = 0.0
    status: int | None = None
    error_message: str = "scripted error"
    stall_s: float = 0.0
    stall_after_chunks: int | None = None
    block_reason: str | None = None
    finish_reason: str = "STOP"


class FakeGemini(LocalHttpServer):
    """The fake Gemini API; point ``GeminiLLM(base_url=server.base_url)`` at it."""

    def __init__(self) -> None:
        super().__init__()
        self.script = GeminiScript()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{version}/models/{model}:streamGenerateContent", self._stream_generate)]

    def _chunk(self, text: str | None, model: str, *, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"index": 0}
        if text is not None:
            candidate["content"] = {"role": "model", "parts": [{"text": text}]}
        if last:
            candidate["finishReason"] = self.script.finish_reason
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response-1"}
        if last:
            chunk["usageMetadata"] = {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21}
        return chunk

    async def _stream_generate(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        script = self.script
        model = request.match_info["model"]
        if script.stall_s and script.stall_after_chunks is None:
            await self.stall(script.stall_s)
        if script.status is not None:
            body = {
                "error": {
                    "code": script.status,
                    "message": script.error_message,
                    "status": _STATUS_NAMES.get(script.status, "UNKNOWN"),
                }
            }
            return web.json_response(body, status=script.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if script.block_reason is not None:
            feedback = {"promptFeedback": {"blockReason": script.block_reason}, "modelVersion": model}
            await response.write(sse_event(feedback, crlf=True))
            await response.write_eof()
            return response
        texts: list[str | None] = list(script.deltas) or [None]
        for i, text in enumerate(texts):
            if script.stall_after_chunks == i:
                await self.stall(script.stall_s)
            elif i and script.delay_s:
                await asyncio.sleep(script.delay_s)
            await response.write(sse_event(self._chunk(text, model, last=i == len(texts) - 1), crlf=True))
        await response.write_eof()
        return response
