"""Following the console's extension directory, and applying it to Asterisk without a reload.

Theory of operation: the console is the source of truth (``contract.directory``). :class:`DirectoryFollower`
GETs the payload every ``poll_s`` seconds (pub/sub would be faster but delivers at most once; a GET of
one small key per second is cheap and cannot miss a change) and hands a new revision, once validated, to
``on_change``; it keeps the last good payload on disk so the app starts with it when Redis is down. A
payload that does not validate is logged and ignored: the directory in use stays.

:class:`AsteriskDirectory` makes Asterisk follow: one global per extension for the dialplan
(:func:`aipbx.directory.dialplan_global`: ring seconds, recording mode, notice, AI on/off), and for
extensions made in the console (they carry a ``sip_password``) a PJSIP endpoint, auth and AOR created
over ARI dynamic configuration (``PUT /asterisk/config/dynamic/res_pjsip/...``), which sorcery keeps in
astdb (``sorcery.conf``): the phone can register at once and the objects survive a restart of Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from aipbx.directory import Directory, DirectoryError, Extension, dialplan_global, parse_directory
from ariapp.ari.client import AriClient
from ariapp.errors import AriError
from contract.directory import BadDirectory, DirectoryPayload, decode, directory_key

log = logging.getLogger(__name__)
CACHE_FILE = "directory.json"


def parse_payload(raw: bytes | str) -> tuple[int, Directory]:
    """A payload's revision and directory; :class:`BadDirectory` says what is wrong with it."""
    payload = decode(raw)
    try:
        return payload.revision, parse_directory(payload.document, "directory payload")
    except DirectoryError as exc:
        raise BadDirectory(str(exc)) from None


def load_cache(state_dir: Path) -> tuple[int, Directory] | None:
    """The last good payload this app applied (None: none yet, or unreadable)."""
    path = state_dir / CACHE_FILE
    try:
        return parse_payload(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, BadDirectory) as exc:
        log.error("ignoring the cached directory %s: %s", path, exc)
        return None


def save_cache(state_dir: Path, revision: int, directory: Directory) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / CACHE_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_text(DirectoryPayload(revision, directory.as_document()).encode(), encoding="utf-8")
    os.replace(tmp, target)


class DirectoryFollower:
    def __init__(
        self,
        redis_url: str,
        instance: str,
        revision: int,
        on_change: Callable[[int, Directory], Awaitable[None]],
        poll_s: float = 1.0,
    ) -> None:
        self.redis_url = redis_url
        self.key = directory_key(instance)
        self.revision = revision
        self.on_change = on_change
        self.poll_s = poll_s
        self.refused = 0  # payloads that did not validate

    async def check(self, client) -> bool:
        """Read the key once; apply a new revision. Returns whether one was applied."""
        raw = await client.get(self.key)
        if raw is None:
            return False
        try:
            revision, directory = parse_payload(raw)
        except BadDirectory as exc:
            if self.refused == 0 or self.refused % 60 == 0:
                log.error("directory payload refused, keeping revision %d: %s", self.revision, exc)
            self.refused += 1
            return False
        if revision == self.revision:
            return False
        await self.on_change(revision, directory)
        self.revision = revision
        self.refused = 0
        return True

    async def run(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(self.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
        try:
            while True:
                try:
                    await self.check(client)
                except (redis.RedisError, OSError) as exc:
                    log.warning("directory not readable from Redis (keeping revision %d): %r", self.revision, exc)
                    await asyncio.sleep(5.0)
                except Exception:  # a bug here must not end the app's task group (every call with it)
                    log.exception("directory follower failed; retrying (keeping revision %d)", self.revision)
                    await asyncio.sleep(5.0)
                await asyncio.sleep(self.poll_s)
        finally:
            await client.aclose()


def endpoint_objects(ext: Extension, codecs: str, rtp_timeout: int) -> list[tuple[str, str, dict[str, str]]]:
    """The PJSIP objects of a console-made extension, as the ``phone-*`` templates of pjsip.conf make
    them for the seed's (dynamic configuration has no templates: every option is spelt out)."""
    owner = ext.owner.replace('"', "")
    endpoint = {
        "context": "from-internal",
        "disallow": "all",
        "allow": codecs,
        "direct_media": "no",
        "rtp_symmetric": "yes",
        "force_rport": "yes",
        "rewrite_contact": "yes",
        "dtmf_mode": "rfc4733",
        "send_pai": "yes",
        "trust_id_inbound": "no",
        "allow_subscribe": "no",
        "allow_unauthenticated_options": "no",
        "rtp_timeout": str(rtp_timeout),
        "rtp_timeout_hold": str(rtp_timeout * 10),
        "auth": f"{ext.ext}-auth",
        "aors": ext.ext,
        "callerid": f'"{owner}" <{ext.ext}>',
    }
    auth = {"auth_type": "userpass", "username": ext.ext, "password": ext.sip_password}
    aor = {
        "max_contacts": "1",
        "remove_existing": "yes",
        "default_expiration": "300",
        "maximum_expiration": "3600",
        "minimum_expiration": "60",
    }
    return [("auth", f"{ext.ext}-auth", auth), ("aor", ext.ext, aor), ("endpoint", ext.ext, endpoint)]


class AsteriskDirectory:
    """Applies a directory to a connected Asterisk (idempotent: safe on every change and reconnect)."""

    def __init__(
        self, ari: AriClient, *, ring_override: int | None = None, codecs: str = "ulaw,alaw", rtp_timeout: int = 120
    ) -> None:
        self.ari = ari
        self.ring_override = ring_override
        self.codecs = codecs
        self.rtp_timeout = rtp_timeout
        self._known: set[str] = set()  # extensions whose global this app set

    async def apply(self, directory: Directory) -> None:
        for ext in directory:
            name, value = dialplan_global(ext, directory, self.ring_override)
            if ext.sip_password:
                await self._provision(ext)
            await self.ari.request("POST", "/asterisk/variable", params={"variable": name, "value": value})
        numbers = {ext.ext for ext in directory}
        for gone in sorted(self._known - numbers):  # removed: calls to it are "not in service" again
            await self.ari.request("POST", "/asterisk/variable", params={"variable": f"AIPBX_EXT_{gone}", "value": ""})
        self._known = numbers

    async def _provision(self, ext: Extension) -> None:
        for kind, object_id, fields in endpoint_objects(ext, self.codecs, self.rtp_timeout):
            body = {"fields": [{"attribute": k, "value": v} for k, v in fields.items()]}
            try:
                await self.ari.request("PUT", f"/asterisk/config/dynamic/res_pjsip/{kind}/{object_id}", body=body)
            except AriError as exc:
                log.error("could not provision PJSIP %s %s over ARI: %s", kind, object_id, exc)
                raise
