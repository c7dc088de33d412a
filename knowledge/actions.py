"""State changes of the knowledge base (zulip style: ``do_*`` functions).

Theory of operation: every ``do_*`` changes PostgreSQL inside
``transaction.atomic`` and schedules the vector-index update with
``transaction.on_commit``, so the index never shows a row that was rolled
back. The index holds the **approved** items only (id = the item's primary key
as a string); pending and rejected items exist in PostgreSQL alone, and
``reindex`` rebuilds an owner's index from PostgreSQL at any time.

Near duplicates are merged rather than stored twice: a new text whose
normalised form equals an existing item's of the same owner, or whose
embedding has cosine >= :data:`DUPLICATE_COSINE` with one, updates that item
(confidence raised to the max, keywords extended). A per-owner advisory lock
serialises concurrent adds for one owner, so two workers cannot both insert.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from aipbx.errors import ConfigError
from aipbx.knowledge import build_retriever
from aipbx.settings import KnowledgeStoreSettings
from knowledge.models import (
    Category,
    ExtractionRun,
    KnowledgeItem,
    KnowledgeVersion,
    LearningPolicy,
    Source,
    Status,
)
from knowledge.retrieval import Item, Retriever, UsemEmbedder, chunk_text
from knowledge.retrieval.retriever import CONTEXT_SUFFIXES, index_entries

__all__ = [
    "DUPLICATE_COSINE",
    "AddResult",
    "Text",
    "do_add_item",
    "do_add_items",
    "do_delete_item",
    "do_edit_item",
    "do_exclude_call",
    "do_record_usage",
    "do_retry_extractions",
    "do_set_learning_policy",
    "do_set_status",
    "fact_tokens",
    "get_retriever",
    "normalize_text",
    "reindex",
    "reset_retriever",
]

#: Cosine similarity from which two texts of one owner count as the same fact.
DUPLICATE_COSINE: Final = 0.92
CHUNK_SIZE: Final = 500
CHUNK_OVERLAP: Final = 50

_RETRIEVERS: dict[tuple[Any, ...], Retriever] = {}
_RETRIEVERS_LOCK = threading.Lock()


def get_retriever() -> Retriever:
    """The process's :class:`Retriever`, built from settings on first use (one per configuration).

    Built by :func:`aipbx.knowledge.build_retriever`, as the ARI app's is; read from the Django settings
    (which come from :mod:`aipbx.settings`) on every call, so tests can switch stores.
    """
    key = (  # KnowledgeStoreSettings's fields, in order
        settings.AIPBX_KNOWLEDGE_STORE,
        settings.AIPBX_CHROMA_HOST,
        settings.AIPBX_CHROMA_PORT,
        settings.AIPBX_CHROMA_TOKEN,
        settings.AIPBX_KNOWLEDGE_PREFIX,
    )
    with _RETRIEVERS_LOCK:
        retriever = _RETRIEVERS.get(key)
        if retriever is None:
            built = build_retriever(KnowledgeStoreSettings(*key), embedder=_shared_embedder())
            if built is None:  # AIPBX_KNOWLEDGE_STORE=none: the ARI app may answer without, the console cannot
                raise ConfigError("AIPBX_KNOWLEDGE_STORE must be chroma or memory for the console, not 'none'")
            retriever = _RETRIEVERS[key] = built
        return retriever


_EMBEDDER: UsemEmbedder | None = None


def _shared_embedder() -> UsemEmbedder:
    """One embedder per process whatever the store (the model takes ~1.5 s to load)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = UsemEmbedder()
    return _EMBEDDER


def reset_retriever() -> None:
    """Forget the cached retrievers (tests switch stores between cases)."""
    with _RETRIEVERS_LOCK:
        _RETRIEVERS.clear()


_PUNCT: Final = re.compile(r"[^\w\s]+")
_JOINERS: Final = re.compile(r"(?<=\w)[.'’](?=\w)")  # "a.m." -> "am", "don't" -> "dont"
# Words that change a fact without changing its embedding much (USE scores "Monday at 10"
# against "Tuesday at 10" at 0.98): an embedding match must agree on all of them.
_FACT_WORDS: Final = re.compile(
    r"\d|monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow|yesterday|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"^am$|^pm$|noon|midnight|[월화수목금토일]요일|오늘|내일|모레|어제|오전|오후|다음|이번|지난|not|never|안|못"
)


def normalize_text(text: str) -> str:
    """Case-, width-, punctuation- and whitespace-insensitive form of ``text``."""
    folded = _JOINERS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(_PUNCT.sub(" ", folded).split())


def fact_tokens(normalized: str) -> frozenset[str]:
    """The tokens of a normalised text that carry dates, times, numbers or negation."""
    return frozenset(token for token in normalized.split() if _FACT_WORDS.search(token))


@dataclass(frozen=True, slots=True)
class Text:
    """A text to add, with the context it came with: an FAQ's question, or the heading it sat under.

    Only ``body`` is ever spoken to a caller; ``question`` and ``heading`` are searched too.
    """

    body: str
    question: str = ""
    heading: str = ""

    def legacy_forms(self) -> tuple[str, ...]:
        """How earlier imports stored the same text (the context folded into it)."""
        forms = []
        if self.question:
            forms.append(f"Q: {self.question} A: {self.body}")
        if self.heading:
            forms.append(f"{self.heading}: {self.body}")
        return tuple(forms)


@dataclass(frozen=True, slots=True)
class AddResult:
    """One chunk's outcome: the item it lives in, and whether that item is new."""

    item: KnowledgeItem
    created: bool


def _vector_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _vector_of(item: KnowledgeItem) -> npt.NDArray[np.float32] | None:
    if not item.embedding:
        return None
    return np.frombuffer(bytes(item.embedding), dtype="<f4")


def _lock_owner(owner: str) -> None:
    """Serialise writers of one owner until the transaction ends (PostgreSQL advisory lock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"knowledge:{owner}"])


class _Catalog:
    """The owner's items as loaded once per add: normalised texts, fact tokens and a vector matrix.

    Loaded under the owner's advisory lock, so nobody else adds meanwhile; new
    items are appended as they are created, so duplicates within one batch merge too.
    """

    def __init__(self, owner: str, dimension: int) -> None:
        rows = list(KnowledgeItem.objects.filter(owner=owner).values_list("pk", "normalized", "embedding"))
        self.by_text: dict[str, int] = {normalized: pk for pk, normalized, _ in rows}
        self.pks: list[int] = []
        self.facts: list[frozenset[str]] = []
        vectors: list[npt.NDArray[np.float32]] = []
        for pk, normalized, blob in rows:
            vector = np.frombuffer(bytes(blob), dtype="<f4") if blob else None
            if vector is not None and vector.shape == (dimension,):
                self.pks.append(pk)
                self.facts.append(fact_tokens(normalized))
                vectors.append(vector)
        self.matrix = np.stack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)

    def find(self, normalized: str, vector: npt.NDArray[np.float32]) -> int | None:
        """The pk of the same fact: equal normalised text, else the most similar embedding at or
        above :data:`DUPLICATE_COSINE` that agrees on every date/number/negation token."""
        if normalized in self.by_text:
            return self.by_text[normalized]
        if not self.pks:
            return None
        facts = fact_tokens(normalized)
        scores = self.matrix @ vector
        for row in np.argsort(-scores):
            if scores[row] < DUPLICATE_COSINE:
                break
            if self.facts[row] == facts:
                return self.pks[row]
        return None

    def add(self, pk: int, normalized: str, vector: npt.NDArray[np.float32]) -> None:
        self.by_text[normalized] = pk
        self.pks.append(pk)
        self.facts.append(fact_tokens(normalized))
        self.matrix = np.vstack([self.matrix, vector[None, :]])


def do_add_item(owner: str, text: str | Text, **fields: Any) -> list[AddResult]:
    """Store one text for ``owner``; see :func:`do_add_items` for ``fields`` and behaviour."""
    return do_add_items(owner, [text], **fields)


def do_add_items(
    owner: str,
    texts: Sequence[str | Text],
    *,
    category: str = Category.INFO,
    keywords: Iterable[str] = (),
    source: str = Source.MANUAL,
    source_call_id: str = "",
    source_speaker: str = "",
    source_span: dict[str, float] | None = None,
    confidence: float = 1.0,
    status: str = Status.PENDING,
    edited_by: Any = None,
) -> list[AddResult]:
    """Store ``texts`` for ``owner`` (one item per chunk of each), merging near duplicates.

    A duplicate keeps the existing item: its confidence becomes the max of both,
    its keywords are extended, and an ``approved`` add approves it (an import is
    the owner's explicit word; a pending candidate never resurrects a rejected item).
    An item an earlier import stored with its context folded into the text ("Q: ... A: ...",
    "Heading: ...") is upgraded in place to text + context.

    Returns:
        One :class:`AddResult` per chunk, in order (blank texts give none).

    Raises:
        ValueError: Blank owner or an unknown category/source/status.
        RetrievalError: The embedder failed (nothing is written).
    """
    if not owner or not owner.strip():
        raise ValueError("an owner is required")
    _check_choice(category, Category.values, "category")
    _check_choice(source, Source.values, "source")
    _check_choice(status, Status.values, "status")
    entries = [Text(text) if isinstance(text, str) else text for text in texts]
    pieces = [
        Text(chunk.strip(), entry.question.strip(), entry.heading.strip()[:200])
        for entry in entries
        for chunk in chunk_text(entry.body, CHUNK_SIZE, CHUNK_OVERLAP)
        if chunk.strip()
    ]
    if not pieces:
        return []
    chunks = [piece.body for piece in pieces]
    embedder = get_retriever().embedder
    vectors = embedder.embed(chunks, purpose="document")
    words = list(dict.fromkeys(k.strip() for k in keywords if k and k.strip()))
    results: list[AddResult] = []
    with transaction.atomic():
        _lock_owner(owner)
        catalog = _Catalog(owner, embedder.dimension)
        for piece, vector in zip(pieces, vectors, strict=True):
            chunk, normalized = piece.body, normalize_text(piece.body)
            duplicate = catalog.find(normalized, vector)
            legacy = (
                None
                if duplicate is not None
                else next(
                    (catalog.by_text[n] for n in map(normalize_text, piece.legacy_forms()) if n in catalog.by_text),
                    None,
                )
            )
            if duplicate is not None or legacy is not None:
                existing = KnowledgeItem.objects.select_for_update().get(pk=duplicate or legacy)
                existing.confidence = max(existing.confidence, confidence)
                existing.keywords = list(dict.fromkeys([*existing.keywords, *words]))
                if status == Status.APPROVED:
                    existing.status = Status.APPROVED
                fields = ["confidence", "keywords", "status", "updated"]
                if legacy is not None:  # stored by an earlier import as "Q: ... A: ..." / "Heading: ..."
                    existing.text, existing.question, existing.heading = chunk, piece.question, piece.heading
                    existing.normalized, existing.embedding = normalized, _vector_bytes(vector)
                    fields += ["text", "question", "heading", "normalized", "embedding"]
                    catalog.add(existing.pk, normalized, vector)
                existing.save(update_fields=fields)
                results.append(AddResult(existing, False))
                continue
            item = KnowledgeItem.objects.create(
                owner=owner,
                text=chunk,
                question=piece.question,
                heading=piece.heading,
                category=category,
                keywords=words,
                source=source,
                source_call_id=source_call_id,
                source_speaker=source_speaker,
                source_span=source_span,
                confidence=confidence,
                status=status,
                normalized=normalized,
                embedding=_vector_bytes(vector),
            )
            KnowledgeVersion.objects.create(
                item=item, version=1, text=chunk, category=category, keywords=words, edited_by=edited_by
            )
            catalog.add(item.pk, normalized, vector)
            results.append(AddResult(item, True))
        _sync_after_commit(owner, [r.item.pk for r in results])
    return results


def do_edit_item(
    item_id: int,
    *,
    text: str | None = None,
    category: str | None = None,
    keywords: Sequence[str] | None = None,
    edited_by: Any = None,
    question: str | None = None,
) -> KnowledgeItem:
    """Change an item's text/question/category/keywords; the new state becomes a new version."""
    new_vector = None
    if text is not None:
        text = text.strip()
        if not text:
            raise ValueError("an item's text cannot be blank")
        new_vector = get_retriever().embedder.embed([text], purpose="document")[0]
    if category is not None:
        _check_choice(category, Category.values, "category")
    with transaction.atomic():
        item = KnowledgeItem.objects.select_for_update().get(pk=item_id)
        if text is not None and new_vector is not None:
            item.text, item.normalized, item.embedding = text, normalize_text(text), _vector_bytes(new_vector)
        if category is not None:
            item.category = category
        if question is not None:
            item.question = question.strip()
        if keywords is not None:
            item.keywords = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
        item.version += 1
        item.save()
        KnowledgeVersion.objects.create(
            item=item,
            version=item.version,
            text=item.text,
            category=item.category,
            keywords=item.keywords,
            edited_by=edited_by,
        )
        _sync_after_commit(item.owner, [item.pk])
    return item


def do_set_status(item_id: int, status: str) -> KnowledgeItem:
    """Approve or reject (or send back to review) an item; the index follows after commit."""
    _check_choice(status, Status.values, "status")
    with transaction.atomic():
        item = KnowledgeItem.objects.select_for_update().get(pk=item_id)
        if item.status != status:
            item.status = status
            item.save(update_fields=["status", "updated"])
            _sync_after_commit(item.owner, [item.pk])
    return item


def do_delete_item(item_id: int) -> None:
    """Delete an item (and its history); it leaves the index after commit."""
    with transaction.atomic():
        item = KnowledgeItem.objects.select_for_update().get(pk=item_id)
        owner = item.owner
        item.delete()
        _sync_after_commit(owner, [item_id])


def do_record_usage(item_ids: Sequence[int]) -> int:
    """Count one use of each item (the AI quoted it to a caller); returns the rows updated."""
    return KnowledgeItem.objects.filter(pk__in=list(item_ids)).update(usage_count=F("usage_count") + 1)


def do_exclude_call(call_id: str) -> int:
    """Take a call out of learning after the fact: every item learned from it goes (published ones
    leave the index after commit), and it is never extracted again. Returns the items removed."""
    with transaction.atomic():
        items = list(KnowledgeItem.objects.select_for_update().filter(source=Source.CALL, source_call_id=call_id))
        by_owner: dict[str, list[int]] = {}
        for item in items:
            by_owner.setdefault(item.owner, []).append(item.pk)
        KnowledgeItem.objects.filter(pk__in=[item.pk for item in items]).delete()
        run, _ = ExtractionRun.objects.get_or_create(call_id=call_id)
        run.status, run.items_created = ExtractionRun.RunStatus.EXCLUDED, 0
        run.reason = f"excluded from learning; {len(items)} item(s) removed"
        run.save()
        for owner, ids in by_owner.items():
            _sync_after_commit(owner, ids)
    return len(items)


def do_set_learning_policy(
    owner: str, *, learning: bool, auto_publish: bool, publish_threshold: float
) -> LearningPolicy:
    """Set how ``owner``'s AI learns from the owner's calls (applies to the next finished call)."""
    if not 0.0 <= publish_threshold <= 1.0:
        raise ValueError(f"the publishing threshold must be between 0 and 1, not {publish_threshold}")
    policy, _ = LearningPolicy.objects.update_or_create(
        owner=owner,
        defaults={"learning": learning, "auto_publish": auto_publish, "publish_threshold": publish_threshold},
    )
    return policy


def do_retry_extractions(call_ids: Sequence[str] | None = None) -> list[str]:
    """Send the failed extraction runs (all, or those of ``call_ids``) back to the worker.

    Each run goes back to ``running`` with its error cleared, and its
    ``extract_knowledge_task`` is queued after commit, so the task (idempotent per
    call id) runs it again from the start. A failed run wrote no items, so
    nothing is duplicated; runs that are running, done or skipped are left alone.
    A named call id with no run at all (its task was never delivered) is queued too.

    Returns:
        The call ids queued, in order.
    """
    from knowledge.tasks import extract_knowledge_task  # tasks import this module

    with transaction.atomic():
        runs = ExtractionRun.objects.select_for_update().filter(status=ExtractionRun.RunStatus.FAILED)
        if call_ids is not None:
            runs = runs.filter(call_id__in=list(call_ids))
        failed = list(runs.order_by("created", "pk").values_list("call_id", flat=True))
        ExtractionRun.objects.filter(call_id__in=failed).update(
            status=ExtractionRun.RunStatus.RUNNING, reason="", error="", items_created=0, finished=None
        )
        known = set(ExtractionRun.objects.filter(call_id__in=list(call_ids or [])).values_list("call_id", flat=True))
        queued = [*failed, *(c for c in dict.fromkeys(call_ids or []) if c not in known)]
        for call_id in queued:
            transaction.on_commit(lambda call_id=call_id: extract_knowledge_task.delay(call_id))
    return queued


def reindex(owner: str | None = None) -> dict[str, int]:
    """Rebuild the vector index from PostgreSQL: per owner, clear then add the approved items.

    Returns:
        ``{owner: number of items indexed}`` for every owner rebuilt.
    """
    owners = [owner] if owner else sorted(set(KnowledgeItem.objects.values_list("owner", flat=True)))
    store = get_retriever().store
    counts: dict[str, int] = {}
    for name in owners:
        store.clear(name)
        ids = list(KnowledgeItem.objects.filter(owner=name, status=Status.APPROVED).values_list("pk", flat=True))
        _sync_index(name, ids, reembed=True)
        counts[name] = len(ids)
    return counts


def _sync_after_commit(owner: str, ids: list[int]) -> None:
    ids = list(dict.fromkeys(ids))
    if ids:
        transaction.on_commit(lambda: _sync_index(owner, ids))


def _sync_index(owner: str, ids: Sequence[int], *, reembed: bool = False) -> None:
    """Make the index agree with PostgreSQL for ``ids``: approved ones upserted, the rest removed."""
    retriever = get_retriever()
    approved = list(KnowledgeItem.objects.filter(owner=owner, pk__in=ids, status=Status.APPROVED))
    gone = [str(pk) + suffix for pk in set(ids) - {item.pk for item in approved} for suffix in ("", *CONTEXT_SUFFIXES)]
    # an edit may have dropped a context: its entry goes too (the upsert below puts back the current ones)
    gone += [
        str(item.pk) + suffix
        for item in approved
        for suffix, value in zip(CONTEXT_SUFFIXES, (item.question, item.heading), strict=True)
        if not value
    ]
    if gone:
        retriever.store.delete(owner, gone)
    for start in range(0, len(approved), 256):
        batch = approved[start : start + 256]
        vectors = [None if reembed else _vector_of(item) for item in batch]
        missing = [i for i, v in enumerate(vectors) if v is None or v.shape[0] != retriever.embedder.dimension]
        if missing:
            fresh = retriever.embedder.embed([batch[i].text for i in missing], purpose="document")
            for i, vector in zip(missing, fresh, strict=True):
                vectors[i] = vector
        items = []
        context_texts: list[tuple[str, str, dict[str, Any]]] = []
        for item, vector in zip(batch, vectors, strict=True):
            if vector is None:
                continue
            metadata = {
                "item_id": item.pk,
                "category": item.category,
                "source": item.source,
                "question": item.question,
                "heading": item.heading,
            }
            entries = index_entries(item.pk, item.text, item.question, item.heading)
            items.append(Item(entries[0][0], vector, item.text, metadata))
            context_texts += [(entry_id, embedded, metadata) for entry_id, embedded in entries[1:]]
        if context_texts:
            context_vectors = retriever.embedder.embed(
                [embedded for _, embedded, _ in context_texts], purpose="document"
            )
            texts = {str(item.pk): item.text for item in batch}
            items += [
                Item(entry_id, vector, texts[entry_id.split(":")[0]], metadata)
                for (entry_id, _, metadata), vector in zip(context_texts, context_vectors, strict=True)
            ]
        retriever.store.upsert(owner, items)


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
