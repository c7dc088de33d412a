"""Errors raised by the softphone package.

One hierarchy for the whole package::

    SoftphoneError
     ├── SipParseError (also ValueError)   malformed SIP/SDP input; dropped and counted
     ├── TransactionTimeout                 no final response within 64*T1 (retryable)
     ├── RegistrationFailed                 REGISTER got a final non-2xx (or timed out)
     └── CallFailed                         INVITE got a final non-2xx, timed out or was cancelled

``retryable`` tells callers whether trying the same thing again may succeed.
"""

from __future__ import annotations


class SoftphoneError(Exception):
    """Base class of every softphone error."""

    retryable: bool = False


class SipParseError(SoftphoneError, ValueError):
    """A SIP message or SDP body from the network could not be parsed."""


class TransactionTimeout(SoftphoneError):
    """A client transaction got no final response in time (Timer B/F, 64*T1)."""

    retryable = True


class RegistrationFailed(SoftphoneError):
    """A REGISTER was answered with a final error (or never answered).

    Attributes:
        status: SIP status code (408 for a local timeout).
        reason: reason phrase.
    """

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"registration failed: {status} {reason}".rstrip())
        self.status = status
        self.reason = reason
        self.retryable = status in (408, 480, 500, 503, 504)


class CallFailed(SoftphoneError):
    """An outgoing call was not answered.

    Attributes:
        status: SIP status code of the final response (408 for a local timeout, 487 when
            cancelled, 0 when the phone was closed).
        reason: reason phrase.
    """

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"call failed: {status} {reason}".rstrip())
        self.status = status
        self.reason = reason
        self.retryable = status in (408, 480, 486, 500, 503, 504, 600)
