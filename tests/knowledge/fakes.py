"""Local stand-ins for the cloud APIs the knowledge base can use, speaking their wire protocols.

Each fake is an aiohttp app served on 127.0.0.1 from a background thread with
its own event loop, so the official (blocking) SDKs can be called from test
code directly. Every request is recorded (method, path, headers, JSON body)
for the tests to assert the request shape.

* OpenAI: ``POST /v1/embeddings`` (float or base64 encoding).
* Gemini: ``POST /{version}/models/{model}:batchEmbedContents`` and ``...:embedContent``
  (any path prefix, so the Vertex AI form is served too).
* Pinecone data plane: ``/vectors/upsert``, ``/query``, ``/vectors/delete``,
  ``/describe_index_stats`` with namespaces, a ``$eq`` metadata filter and cosine scores.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """An aiohttp app on a loopback port in a thread of its own."""

    routes: list[tuple[str, str, Handler]]
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    delay_s: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._record])
        for method, path, handler in self.routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_next:
            status, payload = self.fail_next.pop(0)
            return web.json_response(payload, status=status)
        return await handler(request)


def text_vector(text: str, dimension: int) -> np.ndarray:
    """A deterministic pseudo-embedding of ``text`` (not unit length, on purpose)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dimension).astype(np.float32) * 3.0


def openai_server(dimension: int = 8) -> FakeServer:
    """``POST /v1/embeddings``; answers the items in reverse order (clients must sort by index)."""

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        size = body.get("dimensions") or {"text-embedding-3-small": 1536}.get(body["model"], dimension)
        data = []
        for index, text in enumerate(inputs):
            vector = text_vector(text, size)
            encoded: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return web.json_response(
            {
                "object": "list",
                "data": data[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }
        )

    return FakeServer([("POST", "/v1/embeddings", embeddings)])


def gemini_server(dimension: int = 8) -> FakeServer:
    """Gemini/Vertex ``:batchEmbedContents`` and ``:embedContent`` under any prefix."""

    def embed_one(request_body: dict[str, Any]) -> dict[str, Any]:
        text = "".join(part.get("text", "") for part in request_body["content"]["parts"])
        size = (
            request_body.get("outputDimensionality")
            or (request_body.get("embedContentConfig") or {}).get("outputDimensionality")
            or dimension
        )
        return {"values": text_vector(text, size).tolist()}

    async def dispatch(request: web.Request) -> web.Response:
        body = await request.json()
        tail = request.match_info["tail"]
        if tail.endswith(":batchEmbedContents"):
            return web.json_response({"embeddings": [embed_one(item) for item in body["requests"]]})
        if tail.endswith(":embedContent"):
            return web.json_response({"embedding": embed_one(body)})
        return web.json_response({"error": {"code": 404, "message": f"no route {tail}"}}, status=404)

    return FakeServer([("POST", "/{tail:.*}", dispatch)])


def pinecone_server() -> FakeServer:
    """The four data-plane endpoints PineconeStore uses, over per-namespace dicts.

    ``options["ignore_scoping"] = True`` makes queries search every namespace and
    ignore filters: a broken server, for the client-side isolation check.
    """
    spaces: dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]] = {}
    server: FakeServer

    def matches(meta: dict[str, Any], flt: dict[str, Any] | None) -> bool:
        for key, condition in (flt or {}).items():
            expected = condition.get("$eq") if isinstance(condition, dict) else condition
            if meta.get(key) != expected:
                return False
        return True

    async def upsert(request: web.Request) -> web.Response:
        body = await request.json()
        space = spaces.setdefault(body.get("namespace", ""), {})
        for vector in body["vectors"]:
            space[vector["id"]] = (np.asarray(vector["values"], dtype=np.float32), vector.get("metadata") or {})
        return web.json_response({"upsertedCount": len(body["vectors"])})

    async def query(request: web.Request) -> web.Response:
        body = await request.json()
        broken = server.options.get("ignore_scoping", False)
        if broken:
            space = {key: value for each in spaces.values() for key, value in each.items()}
        else:
            space = spaces.get(body.get("namespace", ""), {})
        q = np.asarray(body["vector"], dtype=np.float32)
        scored = []
        for item_id, (vector, meta) in space.items():
            if broken or matches(meta, body.get("filter")):
                score = float(vector @ q / (np.linalg.norm(vector) * np.linalg.norm(q)))
                scored.append((score, item_id, meta))
        scored.sort(key=lambda entry: -entry[0])
        found = [
            {"id": item_id, "score": score, "values": [], **({"metadata": meta} if body.get("includeMetadata") else {})}
            for score, item_id, meta in scored[: body["topK"]]
        ]
        return web.json_response({"matches": found, "namespace": body.get("namespace", ""), "usage": {"readUnits": 1}})

    async def delete(request: web.Request) -> web.Response:
        body = await request.json()
        namespace = body.get("namespace", "")
        if body.get("deleteAll"):
            if namespace not in spaces:
                return web.json_response({"code": 5, "message": "Namespace not found"}, status=404)
            spaces.pop(namespace)
        else:
            for item_id in body.get("ids", []):
                spaces.get(namespace, {}).pop(item_id, None)
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        dims = {len(v) for space in spaces.values() for v, _ in space.values()}
        return web.json_response(
            {
                "namespaces": {name: {"vectorCount": len(space)} for name, space in spaces.items() if space},
                "dimension": next(iter(dims), 0),
                "indexFullness": 0.0,
                "totalVectorCount": sum(len(space) for space in spaces.values()),
                "metric": "cosine",
            }
        )

    server = FakeServer(
        [
            ("POST", "/vectors/upsert", upsert),
            ("POST", "/query", query),
            ("POST", "/vectors/delete", delete),
            ("POST", "/describe_index_stats", stats),
        ]
    )
    return server
