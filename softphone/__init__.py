"""A small asyncio SIP phone (RFC 3261 over UDP, G.711 RTP) for tests, demos and benchmarks.

>>> phone = Phone(ext="1001", password="secret", server=("127.0.0.1", 5060))

See :mod:`softphone.phone` for the API and ``python -m softphone --help`` for the CLI.
"""

from softphone.call import Call
from softphone.errors import (
    CallFailed,
    RegistrationFailed,
    SipParseError,
    SoftphoneError,
    TransactionTimeout,
)
from softphone.incoming import IncomingCall
from softphone.outgoing import OutgoingCall
from softphone.phone import Phone

__all__ = [
    "Call",
    "CallFailed",
    "IncomingCall",
    "OutgoingCall",
    "Phone",
    "RegistrationFailed",
    "SipParseError",
    "SoftphoneError",
    "TransactionTimeout",
]
