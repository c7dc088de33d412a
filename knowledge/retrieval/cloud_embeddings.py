"""Cloud embedders: OpenAI (``/v1/embeddings``) and Google Gemini (``embedContent``).

Both use the vendor's official client (``openai``, ``google-genai``), imported
only when an embedder is built; a missing SDK raises
:class:`~knowledge.retrieval.errors.BackendUnavailable` naming the package.
Credentials and endpoints are explicit arguments (nothing is read from the
environment), so tests and OpenAI-compatible servers can override the base URL.

Timeouts and retries are explicit: ``timeout_s`` bounds one HTTP attempt and
``max_retries`` counts the client's own retries; vendor exceptions become the
retrieval error family with ``retryable`` set (timeouts, connection errors,
429 and 5xx are retryable; 4xx are not).

Wire-protocol notes:

* The OpenAI client asks for ``encoding_format="base64"`` unless told
  otherwise; we send ``"float"`` because many OpenAI-compatible servers only
  implement that.
* The Gemini Developer API embeds through ``models/{model}:batchEmbedContents``
  (one request per text inside ``requests[]``); Vertex AI (``vertexai=True``)
  uses ``:embedContent`` for a single Gemini text. ``gemini-embedding-001``
  returns unit vectors only at its full 3072 dimensions; shorter outputs are
  re-normalised here like every other backend's.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from knowledge.retrieval.embeddings import BaseEmbedder, Purpose
from knowledge.retrieval.errors import BackendTimeout, BackendUnavailable, BadInput, RetrievalError

__all__ = ["GoogleEmbedder", "OpenAIEmbedder"]

#: Native output sizes of well-known models (used when ``dimensions`` is not given).
OPENAI_DIMENSIONS: Final[dict[str, int]] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
GOOGLE_DIMENSIONS: Final[dict[str, int]] = {
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
}
_GOOGLE_TASKS: Final[dict[str, str]] = {"query": "RETRIEVAL_QUERY", "document": "RETRIEVAL_DOCUMENT"}


def _http_transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """``(timeouts, transport errors)`` of httpx and of its fork httpx2, whichever are installed.

    google-genai uses httpx2 when it is importable and httpx otherwise.
    """
    timeouts: list[type[Exception]] = []
    transports: list[type[Exception]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transports.append(module.TransportError)
    return tuple(timeouts), tuple(transports)


def _status_retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


class OpenAIEmbedder(BaseEmbedder):
    """Embeddings from the OpenAI API or any server that speaks ``POST /v1/embeddings``.

    Args:
        api_key: API key (sent as ``Authorization: Bearer``).
        model: Model name, e.g. ``"text-embedding-3-small"``.
        base_url: API root including ``/v1``; ``None`` is OpenAI's own.
        dimensions: Requested output size (``text-embedding-3-*`` can shorten);
            required for models not in ``OPENAI_DIMENSIONS``.
        timeout_s: Time budget of one HTTP attempt.
        max_retries: Retries the client makes on retryable failures.
        batch_size: Texts per request (the API accepts up to 2048).
    """

    backend = "openai"

    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        dimensions: int | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        batch_size: int = 256,
    ) -> None:
        super().__init__(batch_size=batch_size)
        dimension = dimensions or OPENAI_DIMENSIONS.get(model)
        if dimension is None:
            raise BadInput(f"unknown embedding size of model {model!r}: pass dimensions=", backend=self.backend)
        try:
            import openai
        except ImportError as exc:
            raise BackendUnavailable(
                "the openai SDK is not installed", install="pip install openai", backend=self.backend
            ) from exc
        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)
        self.model = model
        self.dimensions = dimensions
        self.dimension = dimension
        self.name = f"openai/{model}"

    def _embed_batch(self, texts: list[str], purpose: Purpose) -> npt.NDArray[np.floating[Any]]:
        openai = self._openai
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            response = self._client.embeddings.create(model=self.model, input=texts, encoding_format="float", **extra)
        except openai.APITimeoutError as exc:
            raise BackendTimeout(f"no answer from {self._client.base_url}", backend=self.backend) from exc
        except openai.APIConnectionError as exc:
            raise RetrievalError(f"cannot reach {self._client.base_url}: {exc}", backend=self.backend) from exc
        except openai.APIStatusError as exc:
            raise RetrievalError(
                f"HTTP {exc.status_code}: {exc.message}",
                backend=self.backend,
                retryable=_status_retryable(exc.status_code),
            ) from exc
        except openai.OpenAIError as exc:
            raise RetrievalError(f"openai client failed: {exc}", backend=self.backend, retryable=False) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise RetrievalError(f"asked for {len(texts)} embeddings, got {len(rows)}", backend=self.backend)
        return np.asarray([row.embedding for row in rows], dtype=np.float32)


class GoogleEmbedder(BaseEmbedder):
    """Embeddings from the Gemini API (or Vertex AI) through ``google-genai``.

    Questions are embedded with task type ``RETRIEVAL_QUERY`` and stored
    passages with ``RETRIEVAL_DOCUMENT``, as the model expects.

    Args:
        api_key: Gemini API key (or a Vertex AI express-mode key with ``vertexai=True``).
        model: Model name, e.g. ``"gemini-embedding-001"``.
        base_url: Endpoint override (tests, proxies); ``None`` is Google's.
        api_version: API version path segment, ``"v1beta"`` for the Gemini API.
        output_dimensionality: Requested size; required for models not in ``GOOGLE_DIMENSIONS``.
        vertexai: Talk to Vertex AI instead of the Gemini Developer API.
        timeout_s: Time budget of one HTTP attempt.
        max_retries: Retries on 408/429/5xx (``HttpRetryOptions.attempts`` is this + 1).
        batch_size: Texts per request (the Gemini API accepts up to 100); with
            ``vertexai=True`` every text is its own ``:embedContent`` request.
    """

    backend = "google"

    def __init__(
        self,
        api_key: str,
        model: str = "gemini-embedding-001",
        *,
        base_url: str | None = None,
        api_version: str | None = None,
        output_dimensionality: int | None = 768,
        vertexai: bool = False,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=1 if vertexai else batch_size)
        dimension = output_dimensionality or GOOGLE_DIMENSIONS.get(model)
        if dimension is None:
            raise BadInput(
                f"unknown embedding size of model {model!r}: pass output_dimensionality=", backend=self.backend
            )
        try:
            from google import genai
            from google.genai import errors, types
        except ImportError as exc:
            raise BackendUnavailable(
                "the google-genai SDK is not installed", install="pip install google-genai", backend=self.backend
            ) from exc
        self._errors = errors
        self._types = types
        options = types.HttpOptions(
            base_url=base_url,
            api_version=api_version or ("v1beta1" if vertexai else "v1beta"),
            timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(
                attempts=max_retries + 1, http_status_codes=[408, 429, 500, 502, 503, 504]
            ),
        )
        self._client = genai.Client(api_key=api_key, vertexai=vertexai, http_options=options)
        self.model = model
        self.output_dimensionality = output_dimensionality
        self.dimension = dimension
        self.name = f"google/{model}"

    def _embed_batch(self, texts: list[str], purpose: Purpose) -> npt.NDArray[np.floating[Any]]:
        timeouts, transports = _http_transport_errors()
        config = self._types.EmbedContentConfig(
            task_type=_GOOGLE_TASKS[purpose], output_dimensionality=self.output_dimensionality
        )
        try:
            response = self._client.models.embed_content(model=self.model, contents=texts, config=config)
        except self._errors.APIError as exc:
            raise RetrievalError(
                f"HTTP {exc.code}: {exc.message}", backend=self.backend, retryable=_status_retryable(exc.code)
            ) from exc
        except timeouts as exc:
            raise BackendTimeout("no answer from the Gemini API", backend=self.backend) from exc
        except transports as exc:
            raise RetrievalError(f"cannot reach the Gemini API: {exc}", backend=self.backend) from exc
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts) or any(not e.values for e in embeddings):
            raise RetrievalError(f"asked for {len(texts)} embeddings, got {len(embeddings)}", backend=self.backend)
        return np.asarray([e.values for e in embeddings], dtype=np.float32)
