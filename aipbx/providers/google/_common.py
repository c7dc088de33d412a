"""What the Google Cloud speech providers share: SDK import, client options, error translation.

Both ``google-cloud-speech`` and ``google-cloud-texttospeech`` are generated
(GAPIC) clients on ``google-api-core``, so they take the same constructor
arguments and raise the same ``google.api_core.exceptions``. This module
builds those arguments from explicit settings (never the environment) and maps
the exceptions onto :mod:`aipbx.providers.errors`::

    google.api_core.exceptions          -> aipbx.providers.errors
    DeadlineExceeded                    -> ProviderTimeout              (retryable)
    ServiceUnavailable, InternalServer,
    ResourceExhausted, Aborted, Unknown -> ProviderError                (retryable)
    Unauthenticated, PermissionDenied   -> ProviderError                (not retryable; check credentials)
    InvalidArgument, FailedPrecondition,
    NotFound, OutOfRange                -> ProviderBadInput             (not retryable)
    google.auth.exceptions.*            -> ProviderError                (not retryable; check credentials)
    INTERNAL "Internal error from Core" -> ProviderError                (retryable; see below)

grpcio's asyncio client replaces the server's status with INTERNAL "Internal
error from Core" when the server ends a stream while a request is still being
written (grpc/grpc#36066): a PERMISSION_DENIED that arrives mid-upload can
look like that. It is reported as retryable, with a hint to check the
credentials if it repeats.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout, ProviderUnavailable

__all__ = [
    "GoogleConnection",
    "bcp47",
    "google_error_types",
    "import_sdk",
    "iso_language",
    "translate_google_error",
]

#: Module prefix -> the pip requirement that provides it (the SDKs and what they bring along).
PIP_PINS: Final[dict[str, str]] = {
    "google.cloud.speech_v1": "google-cloud-speech==2.41.0",
    "google.cloud.texttospeech_v1": "google-cloud-texttospeech==2.38.0",
    "google.genai": "google-genai==3.6.1",
    "google.auth": "google-auth==2.63.0",
    "google.oauth2": "google-auth==2.63.0",
    "grpc": "grpcio==1.85.3",
}

_CREDENTIALS_HINT: Final = "check the credentials / API key and that the API is enabled for the project"

# BCP-47 tags for the ISO 639-1 hints of the SpeechToText protocol.
_DEFAULT_REGIONS: Final[dict[str, str]] = {
    "ko": "ko-KR",
    "en": "en-US",
    "ja": "ja-JP",
    "zh": "cmn-Hans-CN",
    "de": "de-DE",
    "fr": "fr-FR",
    "es": "es-ES",
}


def import_sdk(module: str, provider: str) -> ModuleType:
    """Import a Google SDK module or raise ProviderUnavailable naming the pip package."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pin = next((req for prefix, req in PIP_PINS.items() if f"{module}.".startswith(f"{prefix}.")), module)
        raise ProviderUnavailable(
            f"{module} is not installed", install=f"pip install {pin}", provider=provider
        ) from exc


def bcp47(language: str) -> str:
    """``"ko"`` -> ``"ko-KR"``; full tags (``"en-GB"``) pass through unchanged."""
    return language if "-" in language else _DEFAULT_REGIONS.get(language.lower(), language)


def iso_language(tag: str | None) -> str | None:
    """``"ko-KR"`` (or Google's lower-case ``"ko-kr"``) -> ``"ko"``; None or ``""`` -> None."""
    return tag.split("-")[0].lower() if tag else None


@dataclass(frozen=True, slots=True)
class GoogleConnection:
    """How to reach and authenticate with a Google Cloud gRPC API.

    Exactly one of ``credentials``, ``credentials_file`` or ``api_key`` must be
    given: nothing is taken from the environment (no Application Default
    Credentials lookup).

    Attributes:
        credentials: A ``google.auth.credentials.Credentials`` object
            (``AnonymousCredentials()`` for a local emulator).
        credentials_file: Path of a service-account JSON key.
        api_key: A Google Cloud API key restricted to the API.
        endpoint: ``host:port`` override of the API endpoint.
        insecure: Connect to ``endpoint`` without TLS; only for a server on this host's loopback
            (test servers, emulators). Credentials are still sent.
    """

    credentials: Any = None
    credentials_file: str | Path | None = None
    api_key: str | None = None
    endpoint: str | None = None
    insecure: bool = False

    def check(self, provider: str) -> None:
        """Raise ProviderUnavailable unless the settings name exactly one way to authenticate."""
        given = [
            name
            for name, value in (
                ("credentials", self.credentials),
                ("credentials_file", self.credentials_file),
                ("api_key", self.api_key),
            )
            if value
        ]
        if len(given) != 1:
            raise ProviderUnavailable(
                "pass exactly one of credentials=, credentials_file= or api_key= "
                f"(got {', '.join(given) or 'none'}); providers never read the environment",
                provider=provider,
            )
        if self.insecure and not self.endpoint:
            raise ProviderUnavailable("insecure=True needs an explicit endpoint", provider=provider)

    def client_kwargs(self, transport_cls: type, provider: str) -> dict[str, Any]:
        """Keyword arguments for a GAPIC ``*AsyncClient`` built from these settings."""
        self.check(provider)
        options: dict[str, Any] = {}
        if self.endpoint:
            options["api_endpoint"] = self.endpoint
        kwargs: dict[str, Any] = {}
        if self.api_key:
            options["api_key"] = self.api_key
        elif self.credentials_file:
            service_account = import_sdk("google.oauth2.service_account", provider)
            try:
                kwargs["credentials"] = service_account.Credentials.from_service_account_file(
                    str(self.credentials_file)
                )
            except (OSError, ValueError) as exc:
                raise ProviderUnavailable(
                    f"cannot read service-account key {self.credentials_file}: {exc}", provider=provider
                ) from exc
        else:
            kwargs["credentials"] = self.credentials
        if self.insecure:
            kwargs["transport"] = functools.partial(
                transport_cls, channel=functools.partial(_loopback_channel, provider)
            )
        kwargs["client_options"] = options
        return kwargs


def _loopback_channel(provider: str, host: str, credentials: Any = None, **_ignored: Any) -> Any:
    """A TLS-free gRPC channel to a loopback ``host`` that still sends the call credentials.

    The generated transport calls this instead of ``create_channel()``. gRPC
    refuses call credentials on a plain insecure channel, but accepts them on
    "local" channel credentials, which skip TLS for loopback peers only; so an
    API key or token reaches a local test server exactly as it would reach Google.
    """
    grpc = import_sdk("grpc", provider)
    auth_grpc = import_sdk("google.auth.transport.grpc", provider)
    auth_requests = import_sdk("google.auth.transport.requests", provider)
    channel_credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    if credentials is not None:
        plugin = auth_grpc.AuthMetadataPlugin(credentials, auth_requests.Request())
        channel_credentials = grpc.composite_channel_credentials(
            channel_credentials, grpc.metadata_call_credentials(plugin)
        )
    return grpc.aio.secure_channel(host, channel_credentials)


def translate_google_error(exc: BaseException, provider: str, what: str) -> ProviderError:
    """Map a google-api-core / google-auth exception onto the provider error hierarchy.

    Args:
        exc: The vendor exception.
        provider: Provider name for the error.
        what: The operation, for the message (``"streaming recognition"``...).

    Returns:
        The ProviderError to ``raise ... from exc``.
    """
    from google.api_core import exceptions as gexc

    if isinstance(exc, ProviderError):
        return exc
    grpc = importlib.import_module("grpc")
    if isinstance(exc, grpc.RpcError) and not isinstance(exc, gexc.GoogleAPICallError):
        exc = gexc.from_grpc_error(exc)  # a raw gRPC error that escaped the generated wrappers
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, gexc.DeadlineExceeded):
        return ProviderTimeout(f"{what}: deadline exceeded ({detail})", provider=provider)
    if isinstance(exc, gexc.Unauthenticated | gexc.PermissionDenied):
        return ProviderError(
            f"{what}: access refused ({type(exc).__name__}: {detail}); {_CREDENTIALS_HINT}",
            provider=provider,
            retryable=False,
        )
    if isinstance(exc, gexc.InvalidArgument):
        # Google also answers INVALID_ARGUMENT for a malformed API key.
        return ProviderBadInput(
            f"{what}: request rejected ({detail}); check the configuration (language, voice, model, "
            f"audio format) and {_CREDENTIALS_HINT}",
            provider=provider,
        )
    if isinstance(exc, gexc.FailedPrecondition | gexc.NotFound | gexc.OutOfRange):
        return ProviderBadInput(f"{what}: {type(exc).__name__}: {detail}", provider=provider)
    if isinstance(exc, gexc.InternalServerError) and "Internal error from Core" in detail:
        # grpcio asyncio overwrites the server's status with this one when the server ends a
        # call while a request is still being written (grpc/grpc#36066): the real reason is lost.
        return ProviderError(
            f"{what}: the service ended the call while audio/text was still being sent and grpcio "
            f"lost its status; if this repeats, {_CREDENTIALS_HINT}",
            provider=provider,
            retryable=True,
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        # ServiceUnavailable, InternalServerError, ResourceExhausted, Aborted, Unknown, Cancelled...
        return ProviderError(f"{what} failed: {type(exc).__name__}: {detail}", provider=provider, retryable=True)
    if isinstance(exc, gexc.RetryError):
        return ProviderError(f"{what}: retries exhausted: {detail}", provider=provider, retryable=True)
    auth_exceptions = importlib.import_module("google.auth.exceptions")
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ProviderError(
            f"{what}: authentication failed ({detail}); {_CREDENTIALS_HINT}", provider=provider, retryable=False
        )
    return ProviderError(f"{what} failed: {exc!r}", provider=provider, retryable=True)


def google_error_types() -> tuple[type[BaseException], ...]:
    """The vendor exception classes that :func:`translate_google_error` understands."""
    from google.api_core import exceptions as gexc

    auth_exceptions = importlib.import_module("google.auth.exceptions")
    grpc = importlib.import_module("grpc")
    return (gexc.GoogleAPIError, auth_exceptions.GoogleAuthError, grpc.RpcError)
