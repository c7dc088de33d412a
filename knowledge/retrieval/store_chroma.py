"""``ChromaStore``: the default vector store, a Chroma server reached over HTTP.

One collection per owner, named ``owner_key(owner)`` (``kb-<readable>-<sha256>``),
created in cosine space with the owner recorded in the collection's metadata.
A query searches only the asking owner's collection, then every hit's
``metadata["owner"]`` is checked (see ``store.py`` for the isolation rules).

Protocol quirks handled here:

* Queries carry **no** ``where={"owner": ...}`` filter: the collection already
  holds one owner only, and Chroma 1.5 answers a filtered query by scanning
  (about 240 ms at 100k items against 4 ms unfiltered, measured here).
  The owner is verified on the results instead.
* ``chromadb.HttpClient`` connects in its constructor and builds its
  ``httpx.Client`` with ``timeout=None`` (an unbounded wait); the client is made
  on first use and its session timeout is set to ``timeout_s``.
* A collection deleted by another process leaves our cached handle pointing at
  a dead id (``NotFoundError``); the handle is dropped and looked up once more.
* ``delete(ids=[])`` is an error in Chroma, so an empty delete is skipped.
* ``token`` is sent as ``Authorization: Bearer <token>`` on every request (chromadb's own
  ``TokenAuthClientProvider``); the stack's server (``chroma_serve``) answers ``403`` without the
  right one, which is not worth retrying: the token is a setting (``AIPBX_CHROMA_TOKEN``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from knowledge.retrieval.chroma_server import CHROMA_REQUIREMENT
from knowledge.retrieval.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadInput,
    OwnerIsolationError,
    RetrievalError,
)
from knowledge.retrieval.store import (
    OWNER_KEY,
    Hit,
    Item,
    check_hits,
    owner_key,
    prepare_items,
    prepare_query,
    require_owner,
)

__all__ = ["ChromaStore"]

_T = TypeVar("_T")
_SCHEMA: Final = 1


class _Missing(Exception):
    """The owner's collection does not exist (internal signal)."""


class ChromaStore:
    """Per-owner collections on a Chroma server.

    Args:
        host: Server address.
        port: Server port.
        prefix: Collection name prefix (one deployment per prefix).
        timeout_s: Time budget of one HTTP request.
        token: Bearer token sent with every request (``AIPBX_CHROMA_TOKEN``); None sends none.
        hnsw: Extra HNSW settings for new collections (``ef_search``, ``max_neighbors``...).
    """

    backend = "chroma"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        prefix: str = "kb",
        timeout_s: float = 10.0,
        hnsw: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> None:
        self.host = host
        self._token = token or None
        self.port = port
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.hnsw = {"space": "cosine", **(hnsw or {})}
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._max_batch = 1000

    # ---- protocol -------------------------------------------------------------------------
    def upsert(self, owner: str, items: Sequence[Item]) -> None:
        ids, vectors, texts, metas = prepare_items(owner, items)
        if not ids:
            return

        def write(collection: Any) -> None:
            for start in range(0, len(ids), self._max_batch):
                end = start + self._max_batch
                collection.upsert(
                    ids=ids[start:end],
                    embeddings=vectors[start:end],
                    documents=texts[start:end],
                    metadatas=metas[start:end],
                )

        self._with_collection(owner, write, create=True)

    def delete(self, owner: str, ids: Sequence[str]) -> None:
        owner = require_owner(owner)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return

        def remove(collection: Any) -> None:
            for start in range(0, len(wanted), self._max_batch):
                collection.delete(ids=wanted[start : start + self._max_batch])

        with contextlib.suppress(_Missing):
            self._with_collection(owner, remove, create=False)

    def query(self, owner: str, vector: npt.ArrayLike, top_k: int) -> list[Hit]:
        owner = require_owner(owner)
        query = prepare_query(vector, top_k)

        def search(collection: Any) -> dict[str, Any]:
            return collection.query(  # type: ignore[no-any-return]
                query_embeddings=query[np.newaxis, :],
                n_results=top_k,
                include=["documents", "metadatas", "distances"],
            )

        try:
            result = self._with_collection(owner, search, create=False)
        except _Missing:
            return []
        ids = result["ids"][0]
        documents = (result.get("documents") or [[]])[0] or [""] * len(ids)
        metadatas = (result.get("metadatas") or [[]])[0] or [{}] * len(ids)
        distances = (result.get("distances") or [[]])[0]
        hits = [
            Hit(item_id, text or "", 1.0 - float(distance), dict(meta or {}))
            for item_id, text, meta, distance in zip(ids, documents, metadatas, distances, strict=True)
        ]
        return check_hits(owner, hits, self.backend)

    def count(self, owner: str) -> int:
        owner = require_owner(owner)
        try:
            return int(self._with_collection(owner, lambda collection: collection.count(), create=False))
        except _Missing:
            return 0

    def clear(self, owner: str) -> None:
        owner = require_owner(owner)
        name = owner_key(owner, self.prefix)
        from chromadb.errors import NotFoundError

        with self._lock:
            self._collections.pop(owner, None)
        with self._translate(), contextlib.suppress(NotFoundError):
            self._get_client().delete_collection(name)

    # ---- internals ------------------------------------------------------------------------
    def _with_collection(self, owner: str, action: Callable[[Any], _T], *, create: bool) -> _T:
        """Run ``action`` on the owner's collection; look it up again once if our handle went stale."""
        for attempt in (0, 1):
            collection = self._collection(owner, create=create)
            try:
                with self._translate():
                    return action(collection)
            except _StaleCollection as exc:
                with self._lock:
                    self._collections.pop(owner, None)
                if attempt == 1:
                    message = f"the owner's collection keeps vanishing: {exc}"
                    raise RetrievalError(message, backend=self.backend) from exc
        raise AssertionError("unreachable")

    def _collection(self, owner: str, *, create: bool) -> Any:
        with self._lock:
            cached = self._collections.get(owner)
        if cached is not None:
            return cached
        from chromadb.errors import NotFoundError

        name = owner_key(owner, self.prefix)
        client = self._get_client()
        with self._translate():
            if create:
                collection = client.get_or_create_collection(
                    name,
                    configuration={"hnsw": self.hnsw},
                    metadata={OWNER_KEY: owner, "aipbx_schema": _SCHEMA},
                    embedding_function=None,
                )
            else:
                try:
                    collection = client.get_collection(name, embedding_function=None)
                except NotFoundError:
                    raise _Missing() from None
        recorded = (collection.metadata or {}).get(OWNER_KEY)
        if recorded != owner:
            raise OwnerIsolationError(
                f"collection {name} records owner {recorded!r}, not the one asked for", backend=self.backend
            )
        with self._lock:
            self._collections[owner] = collection
        return collection

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            try:
                import chromadb
                import httpx
                from chromadb.config import Settings
            except ImportError as exc:
                raise BackendUnavailable(
                    "chromadb is not installed", install=f"pip install {CHROMA_REQUIREMENT}", backend=self.backend
                ) from exc
            if self._token:
                settings = Settings(
                    anonymized_telemetry=False,
                    chroma_client_auth_credentials=self._token,
                    chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                )
            else:
                settings = Settings(anonymized_telemetry=False)
            with self._translate():
                client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
                session = getattr(getattr(client, "_server", None), "_session", None)
                if isinstance(session, httpx.Client):
                    session.timeout = httpx.Timeout(self.timeout_s)
                self._max_batch = max(1, min(int(client.get_max_batch_size()), 5000))
            self._client = client
            return client

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn chromadb/httpx exceptions into the retrieval error family."""
        import httpx
        from chromadb import errors

        where = f"chroma server at {self.host}:{self.port}"
        try:
            yield
        except errors.NotFoundError as exc:
            raise _StaleCollection(str(exc)) from exc
        except errors.InvalidArgumentError as exc:
            raise BadInput(str(exc), backend=self.backend) from exc
        except (errors.ChromaAuthError, errors.AuthorizationError) as exc:
            message = f"{where} refused our token ({exc}): AIPBX_CHROMA_TOKEN must be the server's"
            raise RetrievalError(message, backend=self.backend, retryable=False) from exc
        except errors.ChromaError as exc:
            raise RetrievalError(f"{where}: {exc}", backend=self.backend) from exc
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{where} did not answer within {self.timeout_s} s", backend=self.backend) from exc
        except httpx.TransportError as exc:
            raise RetrievalError(f"cannot reach {where}: {exc}", backend=self.backend) from exc
        except ValueError as exc:  # chromadb reports connect failures and client-side checks as ValueError
            if "connect" in str(exc).lower():
                raise RetrievalError(f"cannot reach {where}: {exc}", backend=self.backend) from exc
            raise BadInput(str(exc), backend=self.backend) from exc


class _StaleCollection(Exception):
    """Chroma answered NotFound for a collection handle (internal signal)."""
