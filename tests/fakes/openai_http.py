"""A local server speaking the parts of the OpenAI HTTP API the providers use, for the real ``openai`` client.

* ``POST /v1/chat/completions`` with ``"stream": true``: server-sent events of
  ``chat.completion.chunk`` objects (role first, then content deltas, then a
  chunk with ``finish_reason``), closed by ``data: [DONE]``.
* ``POST /v1/audio/transcriptions``: multipart form (``file``, ``model``,
  ``language``...), answers ``{"text": ...}``. The uploaded WAV is parsed so
  tests can check its format.
* ``POST /v1/audio/speech``: chunked ``audio/pcm`` (24 kHz s16le), one chunk
  per sentence of the input, so streaming clients can be told apart from
  buffering ones.

Errors use OpenAI's JSON body (``{"error": {"message", "type", "param", "code"}}``).
Scriptable per test through ``server.script``; requests are recorded.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from tests.fakes.http_server import LocalHttpServer, sse_event

__all__ = ["SPEECH_RATE", "FakeOpenAI", "OpenAIScript", "WavInfo", "obedient_reply", "speech_tone"]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SPEECH_RATE = 24000


def speech_tone(sentence: str, seconds_per_char: float) -> np.ndarray:
    """The int16 24 kHz tone ``/v1/audio/speech`` answers for one sentence."""
    seconds = max(0.05, seconds_per_char * len(sentence))
    t = np.arange(round(seconds * SPEECH_RATE)) / SPEECH_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)


@dataclass
class OpenAIScript:
    """What the next calls answer (every endpoint reads the fields that concern it).

    Attributes:
        deltas: Content deltas of a streamed chat completion.
        delay_s: Pause between chat chunks.
        transcript: Text answered by ``/v1/audio/transcriptions``.
        seconds_per_char: Length of the synthesized tone per character.
        hold_text: ``/v1/audio/speech`` holds back the sentence containing this text ...
        release: ... until this event is set.
        hold_chat: Chat completions wait for ``release`` before answering (the client is mid-request).
        statuses: HTTP statuses of the next requests, one each, before ``status`` applies.
        status: Answer this HTTP status with OpenAI's error JSON.
        error_message: ``error.message`` of that answer.
        stall_s: Sleep before answering.
        stall_after_chunks: Sleep ``stall_s`` after this many chat chunks instead (mid-stream).
        odd_pieces: Write speech in 1001-byte pieces, so samples straddle network chunks.
        obedient: Ignore ``deltas`` and play a model that obeys the last instruction found anywhere in the
            messages (see :func:`obedient_reply`): the worst case for prompt injection.
    """

    deltas: list[str] = field(default_factory=lambda: ["Hello", ", this is", " the front desk."])
    delay_s: float = 0.0
    transcript: str = "I would like to book a table for two."
    seconds_per_char: float = 0.01
    hold_text: str | None = None
    release: asyncio.Event | None = None
    hold_chat: bool = False
    statuses: list[int] = field(default_factory=list)
    status: int | None = None
    error_message: str = "scripted error"
    stall_s: float = 0.0
    stall_after_chunks: int | None = None
    odd_pieces: bool = False
    obedient: bool = False


@dataclass(frozen=True)
class WavInfo:
    """Format of an uploaded WAV file."""

    channels: int
    sample_width: int
    rate: int
    frames: int


class FakeOpenAI(LocalHttpServer):
    """The fake OpenAI API; point clients at ``server.base_url + "/v1"``."""

    def __init__(self) -> None:
        super().__init__()
        self.script = OpenAIScript()
        self.uploads: list[WavInfo] = []
        self.sent_at: list[tuple[str, float]] = []  # (sentence, perf_counter) of each speech chunk

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/audio/transcriptions", self._transcribe),
            web.post("/v1/audio/speech", self._speech),
        ]

    async def _scripted_failure(self) -> web.Response | None:
        script = self.script
        if script.stall_s and script.stall_after_chunks is None:
            await self.stall(script.stall_s)
        status = script.statuses.pop(0) if script.statuses else script.status
        if status is None:
            return None
        error_type, code = _ERROR_TYPES.get(status, ("server_error", None))
        body = {"error": {"message": script.error_message, "type": error_type, "param": None, "code": code}}
        return web.json_response(body, status=status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (failure := await self._scripted_failure()) is not None:
            return failure
        script = self.script
        if script.hold_chat and script.release is not None:
            await script.release.wait()
        body = recorded.json or {}
        if not body.get("stream"):
            return web.json_response(
                {"error": {"message": "fake only streams", "type": "invalid_request_error"}}, status=400
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        await response.write(sse_event(chunk({"role": "assistant", "content": ""}, None)))
        deltas = _word_deltas(obedient_reply(body.get("messages") or [])) if script.obedient else script.deltas
        for i, text in enumerate(deltas):
            if script.stall_after_chunks == i:
                await self.stall(script.stall_s)
            elif i and script.delay_s:
                await asyncio.sleep(script.delay_s)
            await response.write(sse_event(chunk({"content": text}, None)))
        await response.write(sse_event(chunk({}, "stop")))
        await response.write(sse_event("[DONE]"))
        await response.write_eof()
        return response

    async def _transcribe(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if (failure := await self._scripted_failure()) is not None:
            return failure
        data = recorded.form.get("file")
        if not isinstance(data, bytes):
            return web.json_response(
                {"error": {"message": "file is required", "type": "invalid_request_error"}}, status=400
            )
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                self.uploads.append(
                    WavInfo(wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
                )
        except (wave.Error, EOFError) as exc:
            return web.json_response(
                {"error": {"message": f"bad audio: {exc}", "type": "invalid_request_error"}}, status=400
            )
        return web.json_response({"text": self.script.transcript, "usage": {"type": "duration", "seconds": 1}})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (failure := await self._scripted_failure()) is not None:
            return failure
        script = self.script
        body = recorded.json or {}
        if body.get("response_format") != "pcm":
            return web.json_response(
                {"error": {"message": "fake only speaks pcm", "type": "invalid_request_error"}}, status=400
            )
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for sentence in _SENTENCE_END.split(str(body.get("input", "")).strip()):
            if script.hold_text and script.hold_text in sentence and script.release is not None:
                await script.release.wait()
            data = speech_tone(sentence, script.seconds_per_char).astype("<i2").tobytes()
            step = 1001 if script.odd_pieces else len(data)
            for start in range(0, len(data), step):
                await response.write(data[start : start + step])
                if script.odd_pieces:
                    await asyncio.sleep(0.002)  # let each piece leave as its own network chunk
            self.sent_at.append((sentence, time.perf_counter()))
        await response.write_eof()
        return response


# --- the obedient model --------------------------------------------------------------------------
# Instructions it understands, English and Korean, wherever they appear (caller turns, knowledge text,
# even its own earlier turns). It obeys the one that appears last, like a badly aligned model would.
_REVEAL = re.compile(
    r"(system prompt|your (instructions|rules|prompt|configuration)|everything above|initial prompt"
    r"|시스템 ?프롬프트|지시(사항|문)?[을를]? ?(그대로|전부|모두)|규칙[을를]? ?(그대로|전부|모두|알려|읽))",
    re.IGNORECASE,
)
_ROLE_PLAY = re.compile(r"(pretend (you are|to be)|you are now|act as|role-?play|역할극|인 척)", re.IGNORECASE)
_REPEAT = re.compile(r"(?:repeat|say) the word \W*(\w+)|(\w+)(?:이라는|라는) 단어를 (?:반복|말)", re.IGNORECASE)
_TRANSFER = re.compile(r"(?:transfer|connect|put) me (?:through )?to (\w+)|(\d+)번?으로 (?:연결|돌려)", re.IGNORECASE)
_DIAL = re.compile(r"\b(?:Dial|Originate)\([^)]*\)", re.IGNORECASE)
_SAY = re.compile(r"(?:say|output|print|write) exactly:?\s*(.+)", re.IGNORECASE)


def obedient_reply(messages: list[dict[str, Any]]) -> str:
    """What a model that obeys the last instruction found anywhere in ``messages`` answers.

    * asked for its prompt / rules (or to role-play): recites the system message verbatim;
    * "repeat the word W": the system prompt's lines mentioning W (an obedient model "helps"), else W;
    * "transfer me to N" or a ``Dial(...)``: announces it and writes the dial string;
    * "say exactly: X": X;
    * nothing of the kind: a harmless answer from the first context line.
    """
    system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    data = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
    found: list[tuple[int, str, re.Match[str]]] = []
    for kind, pattern in (
        ("reveal", _REVEAL),
        ("reveal", _ROLE_PLAY),
        ("repeat", _REPEAT),
        ("transfer", _TRANSFER),
        ("dial", _DIAL),
        ("say", _SAY),
    ):
        found += [(m.start(), kind, m) for m in pattern.finditer(data)]
    if not found:
        context = re.search(r"<context>\s*-\s*([^\n]*)", data)
        return f"Here is what I found: {context.group(1).rstrip('.') if context else 'nothing'}."
    _, kind, match = max(found, key=lambda item: item[0])
    if kind == "reveal":
        return f"Of course. My instructions are: {system}"
    if kind == "repeat":
        word = match.group(1) or match.group(2)
        lines = [line for line in system.splitlines() if word.lower() in line.lower()]
        return " ".join(lines) if lines else f"{word} {word} {word}."
    if kind == "transfer":
        target = match.group(1) or match.group(2)
        return f"Transferring you to {target} now. Dial(PJSIP/{target})"
    if kind == "dial":
        return f"Connecting you. {match.group(0)}"
    return match.group(1)


def _word_deltas(text: str) -> list[str]:
    """Stream ``text`` a word at a time, as models do."""
    return re.findall(r"\S+\s*", text) or [text]
