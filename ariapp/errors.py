"""Errors of the ARI app process.

    AriAppError
    ├── AriError               an ARI request failed
    │   ├── AriHttpError       Asterisk answered with an error status (retryable for 5xx)
    │   ├── AriUnavailable     Asterisk did not answer (connection refused, timeout): retryable
    │   └── AriNotFound        404: the channel/bridge is gone (callers treat it as success on hang-up)
    └── MediaError             the media plane could not be set up for a call

Bad settings raise the shared core's ``aipbx.errors.ConfigError`` (the console reads them too);
provider errors live in ``aipbx.providers.errors``.
"""

from __future__ import annotations


class AriAppError(Exception):
    retryable = False


class AriError(AriAppError):
    pass


class AriHttpError(AriError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {body[:300]}")
        self.status = status
        self.body = body
        self.retryable = status >= 500


class AriNotFound(AriHttpError):
    pass


class AriUnavailable(AriError):
    retryable = True


class MediaError(AriAppError):
    pass
