"""``PineconeStore``: per-owner namespaces in one Pinecone index (the production option).

The data plane is reached through the official ``pinecone`` SDK's ``Index``
(REST over httpx), pointed at the index host; the control plane is not used
(the index is created once by an operator, with ``metric="cosine"`` and the
embedder's dimension).

Isolation (see ``store.py``): each owner is a namespace named
``owner_key(owner)``; every vector carries ``metadata.owner`` and queries add
``filter={"owner": {"$eq": owner}}`` (Pinecone filters inside the search, so
it costs nothing) and check every match again before returning it.

Wire notes: the text of a chunk is stored in ``metadata.text`` (Pinecone has
no document field); a request holds at most 1000 vectors and 2 MB, so writes
go in batches of ``batch_size``. The SDK accepts an ``http://`` host as given
and warns only when it is not loopback or private, which is how the tests
point it at a local fake of the data-plane endpoints.

Retries: the SDK's REST data plane always retries connection errors and
408/429/5xx (3 retries, jittered backoff from 0.25 s, capped at 60 s); the
``Index`` constructor takes no retry policy (``Pinecone(retry_config=...)``
covers the control plane only). ``timeout_s`` bounds each attempt and the
``Retriever``'s time budget bounds a whole search.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy.typing as npt

from knowledge.retrieval.errors import BackendTimeout, BackendUnavailable, BadInput, RetrievalError
from knowledge.retrieval.store import (
    Hit,
    Item,
    MetadataValue,
    check_hits,
    owner_key,
    prepare_items,
    prepare_query,
    require_owner,
)

__all__ = ["PineconeStore"]

_TEXT_KEY: Final = "text"
_MAX_IDS_PER_DELETE: Final = 1000


class PineconeStore:
    """Per-owner namespaces in one Pinecone index.

    Args:
        api_key: Pinecone API key.
        host: The index's data-plane host (``https://<index>-<project>.svc.<region>.pinecone.io``).
        prefix: Namespace prefix.
        timeout_s: Time budget of one HTTP request.
        batch_size: Vectors per upsert request (Pinecone allows up to 1000 and 2 MB).

    Raises:
        BackendUnavailable: The ``pinecone`` SDK is not installed.
        BadInput: The host or key is rejected by the SDK.
    """

    backend = "pinecone"

    def __init__(
        self, api_key: str, host: str, *, prefix: str = "kb", timeout_s: float = 10.0, batch_size: int = 100
    ) -> None:
        try:
            import pinecone
        except ImportError as exc:
            raise BackendUnavailable(
                "the pinecone SDK is not installed", install="pip install pinecone", backend=self.backend
            ) from exc
        from pinecone.errors import exceptions

        self._errors = exceptions
        with self._translate():
            self._index = pinecone.Index(host=host, api_key=api_key, timeout=timeout_s)
        self.host = self._index.host
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.batch_size = max(1, min(batch_size, 1000))

    def upsert(self, owner: str, items: Sequence[Item]) -> None:
        ids, vectors, texts, metas = prepare_items(owner, items)
        namespace = owner_key(owner, self.prefix)
        records = [
            {"id": item_id, "values": vector.tolist(), "metadata": {**meta, _TEXT_KEY: text}}
            for item_id, vector, text, meta in zip(ids, vectors, texts, metas, strict=True)
        ]
        with self._translate():
            for start in range(0, len(records), self.batch_size):
                self._index.upsert(vectors=records[start : start + self.batch_size], namespace=namespace)

    def delete(self, owner: str, ids: Sequence[str]) -> None:
        namespace = owner_key(require_owner(owner), self.prefix)
        wanted = list(dict.fromkeys(ids))
        with self._translate():
            for start in range(0, len(wanted), _MAX_IDS_PER_DELETE):
                self._index.delete(ids=wanted[start : start + _MAX_IDS_PER_DELETE], namespace=namespace)

    def query(self, owner: str, vector: npt.ArrayLike, top_k: int) -> list[Hit]:
        owner = require_owner(owner)
        query = prepare_query(vector, top_k)
        with self._translate():
            response = self._index.query(
                top_k=top_k,
                vector=query.tolist(),
                namespace=owner_key(owner, self.prefix),
                filter={"owner": {"$eq": owner}},
                include_metadata=True,
            )
        hits = []
        for match in response.matches:
            meta: dict[str, MetadataValue] = dict(match.metadata or {})
            text = str(meta.pop(_TEXT_KEY, ""))
            hits.append(Hit(match.id, text, float(match.score), meta))
        return check_hits(owner, hits, self.backend)

    def count(self, owner: str) -> int:
        namespace = owner_key(require_owner(owner), self.prefix)
        with self._translate():
            stats = self._index.describe_index_stats()
        summary = stats.namespaces.get(namespace)
        return int(summary.vector_count) if summary is not None else 0

    def clear(self, owner: str) -> None:
        namespace = owner_key(require_owner(owner), self.prefix)
        with self._translate(), contextlib.suppress(self._errors.NotFoundError):
            self._index.delete(delete_all=True, namespace=namespace)

    def close(self) -> None:
        """Release the SDK's connection pool."""
        self._index.close()

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        errors: Any = self._errors
        try:
            yield
        except errors.PineconeTimeoutError as exc:
            raise BackendTimeout(f"pinecone did not answer: {exc}", backend=self.backend) from exc
        except errors.PineconeConnectionError as exc:
            raise RetrievalError(f"cannot reach pinecone: {exc}", backend=self.backend) from exc
        except errors.ApiError as exc:
            status = getattr(exc, "status_code", None)
            retryable = status is None or status == 429 or status >= 500
            if status in (400, 422):
                raise BadInput(str(exc), backend=self.backend) from exc
            raise RetrievalError(str(exc), backend=self.backend, retryable=retryable) from exc
        except (errors.PineconeValueError, errors.PineconeTypeError) as exc:
            raise BadInput(str(exc), backend=self.backend) from exc
        except errors.PineconeError as exc:
            raise RetrievalError(str(exc), backend=self.backend) from exc
