"""Vector stores: the ``VectorStore`` protocol, owner isolation, and ``MemoryStore``.

Theory of operation: every callee (the *owner*) has a knowledge base of their
own, and a caller of one owner must never hear another owner's facts. Isolation
is enforced in the stores, by construction and then checked again:

1. Every method takes the owner first; ``None``, ``""`` or blanks raise
   :class:`~knowledge.retrieval.errors.OwnerRequired` before any I/O
   (:func:`require_owner`).
2. Each owner's items live in a partition of their own (a dict entry here, a
   Chroma collection, a Pinecone namespace) named by :func:`owner_key`, an
   injective function of the owner id: a query physically searches only that
   owner's partition.
3. Every stored item carries ``metadata["owner"]``, and every hit is checked
   against the asking owner before it is returned (:func:`check_hits`). A
   mismatch means a bug or a tampered store: nothing is returned and
   :class:`~knowledge.retrieval.errors.OwnerIsolationError` is raised.

Scores are cosine similarities in ``[-1, 1]`` (vectors are unit length), highest first.
Store methods are blocking: async callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from knowledge.retrieval.errors import BadInput, OwnerIsolationError, OwnerRequired

__all__ = [
    "OWNER_KEY",
    "Hit",
    "Item",
    "MemoryStore",
    "MetadataValue",
    "VectorStore",
    "check_hits",
    "owner_key",
    "prepare_items",
    "prepare_query",
    "require_owner",
]

#: Metadata key holding the owner on every stored item (as in the design's schema).
OWNER_KEY: Final = "owner"
#: Keys a caller may not set: ``text`` is stored apart (Pinecone keeps it under this key).
_RESERVED: Final = frozenset({"text"})

MetadataValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Item:
    """One chunk to store: its id (unique per owner), unit vector, text and flat metadata."""

    id: str
    vector: npt.NDArray[np.float32]
    text: str
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result; ``metadata`` includes ``owner``."""

    id: str
    text: str
    score: float
    metadata: Mapping[str, MetadataValue]


@runtime_checkable
class VectorStore(Protocol):
    """Per-owner vector storage. Every method raises ``OwnerRequired`` without an owner."""

    def upsert(self, owner: str, items: Sequence[Item]) -> None:
        """Insert or replace ``items`` (by id) in ``owner``'s partition."""
        ...

    def delete(self, owner: str, ids: Sequence[str]) -> None:
        """Remove ``ids`` from ``owner``'s partition; unknown ids are ignored."""
        ...

    def query(self, owner: str, vector: npt.ArrayLike, top_k: int) -> list[Hit]:
        """The ``top_k`` most similar items of ``owner``, best first."""
        ...

    def count(self, owner: str) -> int:
        """Number of items ``owner`` has."""
        ...

    def clear(self, owner: str) -> None:
        """Remove every item of ``owner`` (and the partition itself)."""
        ...


def require_owner(owner: object) -> str:
    """Return ``owner`` if it is a non-blank string, else raise :class:`OwnerRequired`."""
    if owner is None or (isinstance(owner, str) and not owner.strip()):
        raise OwnerRequired()
    if not isinstance(owner, str):
        raise OwnerRequired(f"owner must be a string id, got {type(owner).__name__}")
    return owner


_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]+")


def owner_key(owner: str, prefix: str = "kb") -> str:
    """Partition name of ``owner``: ``<prefix>-<readable part>-<sha256 prefix>``.

    The readable part is for operators only; the 24-hex-digit (96-bit) hash of
    the exact owner string makes distinct owners map to distinct names. The
    result suits both Chroma collection names (3-512 chars of ``[A-Za-z0-9._-]``,
    alphanumeric at both ends) and Pinecone namespaces.
    """
    owner = require_owner(owner)
    readable = _UNSAFE.sub("_", owner)[:32].strip("_-") or "x"
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:24]
    return f"{prefix}-{readable}-{digest}"


def prepare_items(
    owner: str, items: Sequence[Item]
) -> tuple[list[str], npt.NDArray[np.float32], list[str], list[dict[str, MetadataValue]]]:
    """Validate ``items`` and return ``(ids, unit vectors, texts, metadata with owner)``.

    A repeated id within one call keeps its last occurrence (upsert semantics).

    Raises:
        BadInput: Empty id, vectors of different lengths, zero/non-finite vector,
            reserved or non-scalar metadata, or a metadata owner that is not ``owner``.
    """
    owner = require_owner(owner)
    latest: dict[str, Item] = {}
    for item in items:
        if not isinstance(item.id, str) or not item.id:
            raise BadInput(f"item ids must be non-empty strings, got {item.id!r}")
        latest.pop(item.id, None)
        latest[item.id] = item
    unique = list(latest.values())
    if not unique:
        return [], np.zeros((0, 0), dtype=np.float32), [], []
    lengths = {np.asarray(item.vector).shape for item in unique}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise BadInput(f"item vectors must be 1-D and of one length, got shapes {sorted(lengths)}")
    vectors = np.stack([np.asarray(item.vector, dtype=np.float32) for item in unique])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0.0):
        raise BadInput("item vectors must be finite and non-zero")
    metadatas: list[dict[str, MetadataValue]] = []
    for item in unique:
        meta = dict(item.metadata)
        if _RESERVED & meta.keys():
            raise BadInput(f"metadata keys {sorted(_RESERVED & meta.keys())} are reserved (item {item.id!r})")
        if meta.get(OWNER_KEY, owner) != owner:
            raise BadInput(f"item {item.id!r} names owner {meta[OWNER_KEY]!r} but is stored for another owner")
        for key, value in meta.items():
            if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
                raise BadInput(f"metadata must map strings to str/int/float/bool (item {item.id!r}, key {key!r})")
        meta[OWNER_KEY] = owner
        metadatas.append(meta)
    return [item.id for item in unique], vectors / norms, [item.text for item in unique], metadatas


def prepare_query(vector: npt.ArrayLike, top_k: int, dimension: int | None = None) -> npt.NDArray[np.float32]:
    """Validate a query vector and ``top_k``; return the vector at unit length.

    Raises:
        BadInput: ``top_k < 1``, wrong shape or dimension, zero or non-finite vector.
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise BadInput(f"top_k must be a positive integer, got {top_k!r}")
    query = np.asarray(vector, dtype=np.float32)
    if query.ndim != 1 or (dimension is not None and query.shape[0] != dimension):
        raise BadInput(f"query vector has shape {query.shape}, expected ({dimension},)")
    norm = float(np.linalg.norm(query))
    if not np.isfinite(norm) or norm == 0.0:
        raise BadInput("query vector must be finite and non-zero")
    return query / norm


def check_hits(owner: str, hits: list[Hit], backend: str) -> list[Hit]:
    """Return ``hits`` if every one belongs to ``owner``; otherwise withhold them all.

    Raises:
        OwnerIsolationError: A hit carries another (or no) owner.
    """
    strangers = [hit.id for hit in hits if hit.metadata.get(OWNER_KEY) != owner]
    if strangers:
        raise OwnerIsolationError(
            f"{len(strangers)} result(s) of a query for one owner belong to another: {strangers[:5]}",
            backend=backend,
        )
    return hits


class _Shelf:
    """One owner's items: a growable matrix plus parallel lists; swap-remove on delete."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.matrix: npt.NDArray[np.float32] = np.zeros((16, dimension), dtype=np.float32)
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metadatas: list[dict[str, MetadataValue]] = []
        self.rows: dict[str, int] = {}

    def put(self, item_id: str, vector: npt.NDArray[np.float32], text: str, meta: dict[str, MetadataValue]) -> None:
        row = self.rows.get(item_id)
        if row is None:
            row = len(self.ids)
            if row == self.matrix.shape[0]:
                self.matrix = np.vstack([self.matrix, np.zeros_like(self.matrix)])
            self.rows[item_id] = row
            self.ids.append(item_id)
            self.texts.append(text)
            self.metadatas.append(meta)
        else:
            self.texts[row] = text
            self.metadatas[row] = meta
        self.matrix[row] = vector

    def remove(self, item_id: str) -> None:
        row = self.rows.pop(item_id, None)
        if row is None:
            return
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.matrix[row] = self.matrix[last]
            self.ids[row], self.texts[row], self.metadatas[row] = moved, self.texts[last], self.metadatas[last]
            self.rows[moved] = row
        self.ids.pop()
        self.texts.pop()
        self.metadatas.pop()


class MemoryStore:
    """Exact (brute-force) cosine search in numpy; one shelf per owner.

    For unit tests and small deployments: 100k 512-d chunks take ~200 MB and a
    query is one matrix-vector product. Thread-safe; nothing is persisted.
    """

    backend = "memory"

    def __init__(self) -> None:
        self._shelves: dict[str, _Shelf] = {}
        self._lock = threading.Lock()

    def upsert(self, owner: str, items: Sequence[Item]) -> None:
        ids, vectors, texts, metas = prepare_items(owner, items)
        if not ids:
            return
        with self._lock:
            shelf = self._shelves.get(owner)
            if shelf is None:
                shelf = self._shelves[owner] = _Shelf(vectors.shape[1])
            elif shelf.dimension != vectors.shape[1]:
                raise BadInput(f"vectors have {vectors.shape[1]} dimensions, this owner's have {shelf.dimension}")
            for item_id, vector, text, meta in zip(ids, vectors, texts, metas, strict=True):
                shelf.put(item_id, vector, text, meta)

    def delete(self, owner: str, ids: Sequence[str]) -> None:
        owner = require_owner(owner)
        with self._lock:
            shelf = self._shelves.get(owner)
            if shelf is not None:
                for item_id in ids:
                    shelf.remove(item_id)

    def query(self, owner: str, vector: npt.ArrayLike, top_k: int) -> list[Hit]:
        owner = require_owner(owner)
        with self._lock:
            shelf = self._shelves.get(owner)
            if shelf is None or not shelf.ids:
                prepare_query(vector, top_k)
                return []
            query = prepare_query(vector, top_k, shelf.dimension)
            scores = shelf.matrix[: len(shelf.ids)] @ query
            k = min(top_k, scores.shape[0])
            best = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
            best = best[np.argsort(-scores[best], kind="stable")]
            hits = [
                Hit(shelf.ids[row], shelf.texts[row], float(scores[row]), dict(shelf.metadatas[row])) for row in best
            ]
        return check_hits(owner, hits, self.backend)

    def count(self, owner: str) -> int:
        owner = require_owner(owner)
        with self._lock:
            shelf = self._shelves.get(owner)
            return len(shelf.ids) if shelf is not None else 0

    def clear(self, owner: str) -> None:
        owner = require_owner(owner)
        with self._lock:
            self._shelves.pop(owner, None)
