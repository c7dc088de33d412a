"""Typed views of the ARI JSON we use (channels, bridges, events).

ARI JSON is outside input: parsing never raises on unexpected shapes beyond :class:`AriParseError`,
and unknown fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class AriParseError(ValueError):
    pass


# A soft ``ChannelHangupRequest`` carries Asterisk's soft-hangup flag in ``cause``, not a Q.850 cause:
# on ``core stop``/``core restart`` every channel gets ``{"cause": 4, "soft": true}``
# (AST_SOFTHANGUP_SHUTDOWN; seen on 22.10). Our own DELETEs carry the Q.850 cause of their reason (16, 17...).
SOFTHANGUP_SHUTDOWN = 4


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    connected_number: str
    context: str
    exten: str
    creationtime: datetime | None
    language: str
    channelvars: dict[str, str] = field(default_factory=dict)

    @property
    def technology(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def endpoint(self) -> str:
        """``PJSIP/1002-00000003`` -> ``1002``."""
        rest = self.name.split("/", 1)[1] if "/" in self.name else self.name
        return rest.rsplit("-", 1)[0]

    @classmethod
    def parse(cls, raw: Any) -> Channel:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise AriParseError(f"not a channel: {str(raw)[:200]}")
        caller = _mapping(raw, "caller")
        connected = _mapping(raw, "connected")
        dialplan = _mapping(raw, "dialplan")
        return cls(
            id=raw["id"],
            name=str(raw.get("name", "")),
            state=str(raw.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            connected_number=str(connected.get("number", "")),
            context=str(dialplan.get("context", "")),
            exten=str(dialplan.get("exten", "")),
            creationtime=parse_time(raw.get("creationtime")),
            language=str(raw.get("language", "")),
            channelvars={str(k): str(v) for k, v in _mapping(raw, "channelvars").items()},
        )


@dataclass(frozen=True, slots=True)
class AriEvent:
    """One event from the ARI websocket. ``channel`` is the event's main channel, when it has one."""

    type: str
    application: str
    timestamp: datetime | None
    channel: Channel | None
    raw: dict[str, Any]

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.raw.get("args") or []]

    @property
    def shutdown_hangup(self) -> bool:
        """Asterisk is hanging this channel up because it is shutting down (or restarting)."""
        return (
            self.type == "ChannelHangupRequest"
            and self.raw.get("soft") is True
            and self.raw.get("cause") == SOFTHANGUP_SHUTDOWN
        )

    @property
    def peer(self) -> Channel | None:
        peer = self.raw.get("peer")
        return Channel.parse(peer) if peer else None

    @property
    def caller(self) -> Channel | None:
        caller = self.raw.get("caller")
        return Channel.parse(caller) if caller else None

    @classmethod
    def parse(cls, raw: Any) -> AriEvent:
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise AriParseError(f"not an ARI event: {str(raw)[:200]}")
        channel = raw.get("channel")
        return cls(
            type=raw["type"],
            application=str(raw.get("application", "")),
            timestamp=parse_time(raw.get("timestamp")),
            channel=Channel.parse(channel) if channel else None,
            raw=raw,
        )


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise AriParseError(f"{key} is not an object: {str(value)[:100]}")
    return value


def parse_time(value: Any) -> datetime | None:
    """ARI times look like ``2026-11-25T14:31:37.123+0000``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
