"""Structured logs for every process: JSON lines in production, readable lines in development.

Theory of operation
    Code keeps calling ``logging.getLogger(__name__)``; the root handler's
    :class:`structlog.stdlib.ProcessorFormatter` turns each record into an event dict, adds the
    context bound with :func:`bind_call` (``call_id``: the ARI app binds it where a call's task
    starts, and asyncio tasks and ``asyncio.to_thread`` copy the context), the level, logger name,
    ISO time and any ``extra={...}``, then :func:`redact` scrubs it and it is rendered —
    ``AIPBX_LOG_JSON=1``: one JSON object per line; otherwise structlog's console format.

Redaction (:func:`redact`) never lets a secret or a full phone number out:
    * values under secret-looking keys (``password``, ``token``, ``api_key``, ``authorization`` ...);
    * secret values registered at start-up (the ARI password, API keys from the environment)
      wherever they appear in text;
    * ``Bearer``/``Basic`` credentials, ``password=...``-style pairs, passwords in URLs;
    * PII: :func:`aipbx.privacy.mask_pii` when that module is present, and in any case phone
      numbers (7 or more digits) masked to their last four digits.
    A field longer than :data:`MAX_FIELD_CHARS` keeps its first and last halves with the count of
    characters cut between them: a request line or ``Host`` header is the sender's to choose, and
    no log line should cost the process more than a few milliseconds to mask.
    Keys that are identifiers, not personal data (``call_id``, ``timestamp``, ``event_id`` ...), are
    left alone: an Asterisk channel id such as ``1718000000.42`` is not a phone number.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import structlog
from structlog.typing import EventDict

REDACTED = "[redacted]"
#: The longest text field a line carries whole (a traceback fits; a 64 KB request path does not).
MAX_FIELD_CHARS = 8192
_NUMBERISH = "0123456789 \t-–./()+,"
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|secret|token|api[_-]?key|authorization|credential|private[_-]?key", re.IGNORECASE
)
_SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|_KEYS?$|KEYRING|CREDENTIAL", re.IGNORECASE)
_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_PAIR = re.compile(
    r"\b(password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key)(\"?'?\s*[:=]\s*[\"']?)"
    r"([^\s\"'&,;)}]+)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):([^/\s@]+)@", re.IGNORECASE)
# A phone number: 7+ digits, optionally dash-separated (or space-separated after a leading +).
# Not part of a longer token, a dotted id (1718000000.42), a date or a time.
_PHONE = re.compile(r"(?<![\w.+/:*-])(?:\+\d(?:[ -]?\d){6,}|\d(?:-?\d){6,})(?![\w/:*]|[.-]\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IDENTIFIER_KEYS = frozenset(
    {"call_id", "timestamp", "event_id", "request_id", "level", "logger", "ts", "channel_id", "bridge_id"}
)

_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Secret values to scrub wherever they appear (ignored if shorter than 4 characters)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they are secrets (8+ characters: a short
    value such as ``1`` or ``true`` is a flag, and scrubbing it everywhere would garble the logs)."""
    found = [value for name, value in env.items() if _SECRET_ENV.search(name) and len(value) >= 8]
    # A URL may carry its password (AIPBX_REDIS_URL=redis://aipbx-dev:<password>@...): that part is a secret.
    for name, value in env.items():
        if name.endswith("_URL") and "@" in value:
            password = unquote(urlsplit(value).password or "")
            if len(password) >= 8:
                found += [password, quote(password, safe="")]
    return list(dict.fromkeys(found))


def mask_phone_numbers(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        found = match.group(0)
        if _DATE.fullmatch(found):
            return found
        digits = sum(c.isdigit() for c in found)
        seen = 0
        out = []
        for c in found:
            if c.isdigit():
                seen += 1
                out.append(c if seen > digits - 4 else "*")
            else:
                out.append(c)
        return "".join(out)

    return _PHONE.sub(mask, text)


def _pii_masker() -> Callable[[str], str]:
    """``aipbx.privacy.mask_pii`` (card numbers, e-mails, resident numbers ...) when present."""
    try:
        from aipbx.privacy import mask_pii
    except ImportError:
        return lambda text: text
    return mask_pii


_mask_pii = _pii_masker()


def bound(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` whole if it has at most ``limit`` characters, else its two ends around a marker."""
    if len(text) <= limit:
        return text
    half = limit // 2
    # Digits at the cut go with the cut: half a phone number on either side would mask to nothing.
    head, tail = text[:half].rstrip(_NUMBERISH), text[-half:].lstrip(_NUMBERISH)
    return f"{head}…[{len(text) - len(head) - len(tail):,} characters cut]…{tail}"


def scrub(text: str) -> str:
    """Remove secrets and mask PII in one piece of text, bounded to :data:`MAX_FIELD_CHARS`."""
    for secret in _secrets:  # before the cut, which could otherwise split a secret in two
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = bound(text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    return mask_phone_numbers(_mask_pii(text))


def scrub_around(text: str, identifiers: re.Pattern[str] | None) -> str:
    """:func:`scrub` ``text`` except where it quotes one of the line's own ``identifiers``: a call id
    such as ``pbx-1796399253.113`` written in a message must read as it does in the ``call_id``
    field, not as a ``[card]`` whenever its digits happen to pass the Luhn check."""
    if identifiers is None or len(text) > MAX_FIELD_CHARS:
        return scrub(text)
    pieces = identifiers.split(text)  # the pattern has one group: the identifiers stay in the list
    return "".join(piece if index % 2 else scrub(piece) for index, piece in enumerate(pieces))


def _clean(value: Any, identifiers: re.Pattern[str] | None = None) -> Any:
    if isinstance(value, str):
        return scrub_around(value, identifiers)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _clean(v, identifiers)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v, identifiers) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub_around(str(value), identifiers)


def _identifiers(event: EventDict) -> re.Pattern[str] | None:
    """The line's identifier values (``call_id`` …) long enough to be mistaken for a number."""
    values = sorted(
        {v for k, v in event.items() if k in IDENTIFIER_KEYS and isinstance(v, str) and 7 <= len(v) <= 128},
        key=len,
        reverse=True,
    )
    if not values:
        return None
    return re.compile("(" + "|".join(re.escape(v) for v in values) + ")")


def redact(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """structlog processor: no secret and no full phone number leaves the process."""
    identifiers = _identifiers(event)
    for key, value in list(event.items()):
        if key.startswith("_") or key in IDENTIFIER_KEYS:
            continue
        event[key] = REDACTED if _SECRET_KEY.search(key) else _clean(value, identifiers)
    return event


def bind_call(call_id: str) -> Mapping[str, Any]:
    """Every line logged from now on in this task (and the tasks and threads it starts) carries it.

    Returns the tokens for :func:`unbind`, for code that does not own its task.
    """
    return structlog.contextvars.bind_contextvars(call_id=call_id)


def unbind(tokens: Mapping[str, Any]) -> None:
    structlog.contextvars.reset_contextvars(**tokens)


def _pre_chain() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(json_lines: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_pre_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def _configure_structlog() -> None:
    """structlog's own loggers (``structlog.get_logger``) go through the same stdlib handler."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


#: HTTP client libraries that log every request at INFO: a vector search is three such lines, and
#: a collection's UUID in them reads like a number. Their warnings still show; all of it at DEBUG.
CHATTY_LIBRARIES = ("httpx", "httpx2", "httpcore")


def _library_level(level: str | int) -> str:
    return "DEBUG" if level in ("DEBUG", "debug", logging.DEBUG) else "WARNING"


def configure(level: str = "INFO", json_lines: bool = False, secrets: Iterable[str | None] = ()) -> None:
    """Route the root logger (stderr) through structlog; call once at process start."""
    register_secrets(secrets)
    _configure_structlog()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(_library_level(level))


def django_logging(level: str, json_lines: bool, secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """``LOGGING`` for Django settings: the same format for Daphne, the worker and manage.py."""
    register_secrets(secrets)
    _configure_structlog()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "json_lines": json_lines}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # Django's default config gives "django" its own console handler as well;
        # drop it so each record is printed once, by the root handler.
        "loggers": {
            "django": {"handlers": [], "propagate": True},
            **{name: {"level": _library_level(level)} for name in CHATTY_LIBRARIES},
        },
    }
