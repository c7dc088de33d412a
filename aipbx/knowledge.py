"""The knowledge retriever, built in one place for the ARI app and the console.

The ARI app answers callers with it; the console and the worker index the callees' knowledge and
search it. Both read the same store settings (:class:`aipbx.settings.KnowledgeStoreSettings`), so a
passage the console indexes is the passage a caller is answered from. ``knowledge.retrieval`` is
pure Python and imported only when a retriever is built (its SDKs load with the store and model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aipbx.errors import ConfigError
from aipbx.settings import KNOWLEDGE_STORES, KnowledgeStoreSettings

if TYPE_CHECKING:
    from knowledge.retrieval import Embedder, Retriever, VectorStore


def build_store(knowledge: KnowledgeStoreSettings) -> VectorStore | None:
    """The vector store of ``knowledge.store`` (None for ``none``: calls are answered without knowledge).

    Raises:
        ConfigError: an unknown store.
    """
    from knowledge.retrieval import ChromaStore, MemoryStore

    if knowledge.store == "chroma":
        return ChromaStore(
            knowledge.chroma_host, knowledge.chroma_port, prefix=knowledge.prefix, token=knowledge.chroma_token
        )
    if knowledge.store == "memory":
        return MemoryStore()
    if knowledge.store == "none":
        return None
    raise ConfigError(f"AIPBX_KNOWLEDGE_STORE must be one of {', '.join(KNOWLEDGE_STORES)}, not {knowledge.store!r}")


def build_retriever(
    knowledge: KnowledgeStoreSettings, *, embedder: Embedder | None = None, answers_calls: bool = False
) -> Retriever | None:
    """The callees' knowledge: USE multilingual embeddings (unless ``embedder`` is given) over the store.

    Args:
        knowledge: The store settings.
        embedder: One the process already loaded (the model takes ~1.5 s to load); default a new
            :class:`~knowledge.retrieval.UsemEmbedder`.
        answers_calls: The ARI app's retriever: the best five passages, weighed by the relevance gate
            that decides whether one answers the caller (when the gate was fitted for the embedder).
            Otherwise the console's, which indexes and shows the best three.

    Returns:
        None for the store ``none``.

    Raises:
        ConfigError: an unknown store.
    """
    store = build_store(knowledge)
    if store is None:
        return None
    from knowledge.retrieval import Retriever, UsemEmbedder
    from knowledge.retrieval.relevance import FITTED_FOR, RelevanceGate

    embedder = UsemEmbedder() if embedder is None else embedder
    if not answers_calls:
        return Retriever(embedder, store)
    gate = RelevanceGate(embedder) if embedder.name == FITTED_FOR else None
    return Retriever(embedder, store, top_k=5, gate=gate)  # the gate weighs the best five
