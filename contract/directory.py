"""The extension directory the console publishes and the ARI app follows.

PostgreSQL (the console's ``calls.Extension`` rows) is the source of truth of the extensions and their
settings; ``asterisk/extensions.yaml`` only seeds it. After every change the console SETs one JSON
document at :func:`directory_key` and PUBLISHes its revision on :func:`directory_channel`; the ARI app
reads the key when told (or every few seconds, since pub/sub delivers at most once) and applies a
document whose revision differs from the one it has. The document inside is the YAML's shape with every
field explicit (``aipbx.directory.Directory.as_document``); this module only frames it.

A payload the ARI app cannot use (not JSON, a wrong version, a directory that does not validate) is
refused with :class:`BadDirectory` and the directory it has stays: a bad publish loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = 1


class BadDirectory(ValueError):
    """A directory payload that cannot be applied; the message says why."""


def directory_key(instance: str) -> str:
    """The string key holding the current directory payload."""
    return f"aipbx:{instance}:directory"


def directory_channel(instance: str) -> str:
    """The pub/sub channel a new revision is announced on (the message is the revision)."""
    return f"aipbx:{instance}:directory:changed"


@dataclass(frozen=True)
class DirectoryPayload:
    """``revision`` grows with every publish (the console's audit row id, or a time stamp)."""

    revision: int
    document: dict[str, Any]

    def encode(self) -> str:
        return json.dumps(
            {"version": VERSION, "revision": self.revision, "directory": self.document},
            ensure_ascii=False,
            sort_keys=True,
        )


def decode(raw: bytes | str) -> DirectoryPayload:
    """Parse a payload's frame (the document itself is validated by the reader's parser)."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise BadDirectory(f"directory payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadDirectory("directory payload must be a JSON object")
    if data.get("version") != VERSION:
        raise BadDirectory(f"directory payload version {data.get('version')!r} is not {VERSION}")
    revision = data.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise BadDirectory(f"directory payload revision {revision!r} must be a non-negative integer")
    document = data.get("directory")
    if not isinstance(document, dict):
        raise BadDirectory("directory payload has no 'directory' object")
    return DirectoryPayload(revision, document)
