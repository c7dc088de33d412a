"""The wire format of a webhook: body, headers and signature (pure functions, no I/O).

A request is ``POST <endpoint url>`` with a JSON body::

    {"data": {...}, "event": "call_ended", "id": "<event uuid>", "occurred_at": "2026-11-25T01:00:30.500000+00:00"}

and the headers

- ``X-AIPBX-Event``: the event type;
- ``X-AIPBX-Delivery``: the event uuid (same as ``id``); the same for every attempt and endpoint,
  so a receiver deduplicates on it;
- ``X-AIPBX-Timestamp``: Unix seconds when this attempt was signed;
- ``X-AIPBX-Signature``: ``v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the secret>``.

The body is rendered the same way on every attempt (sorted keys, compact separators); the
timestamp and signature are fresh per attempt. Receivers verify with the snippet in
``webconsole/README.md`` (the tests run that very snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

SIGNATURE_VERSION = "v1"

#: Fields of ``data`` that hold a caller's phone number; masked unless the endpoint opts in.
PHONE_FIELDS = frozenset({"caller", "callback_number"})


def mask_number(number: str, keep: int = 4) -> str:
    """``"01012345678"`` → ``"*******5678"``: every digit but the last ``keep`` becomes ``*``."""
    digits = sum(ch.isdigit() for ch in number)
    hide, out = digits - keep, []
    for ch in number:
        if ch.isdigit() and hide > 0:
            out.append("*")
            hide -= 1
        else:
            out.append(ch)
    return "".join(out)


def render_data(data: dict[str, Any], *, full_numbers: bool) -> dict[str, Any]:
    if full_numbers:
        return dict(data)
    return {k: mask_number(v) if k in PHONE_FIELDS and isinstance(v, str) else v for k, v in data.items()}


def render_body(
    event_type: str, event_id: str, occurred_at: datetime, data: dict[str, Any], *, full_numbers: bool
) -> bytes:
    envelope = {
        "event": event_type,
        "id": event_id,
        "occurred_at": occurred_at.isoformat(),
        "data": render_data(data, full_numbers=full_numbers),
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def headers(event_type: str, event_id: str, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    ts = str(timestamp)
    return {
        "Content-Type": "application/json",
        "User-Agent": "aipbx-webhooks/1",
        "X-AIPBX-Event": event_type,
        "X-AIPBX-Delivery": event_id,
        "X-AIPBX-Timestamp": ts,
        "X-AIPBX-Signature": signature(secret, ts, body),
    }
