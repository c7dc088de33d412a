"""Redis users of a stack instance: who may read and write the keys callers' calls depend on.

Every process of an instance (ARI app, web, event consumer, Celery workers) reaches Redis as one
ACL user, ``aipbx-<instance>``, with a per-install password (``AIPBX_REDIS_PASSWORD``). The user
may touch the instance's own keys and the Celery broker's, nothing else, and no ``@dangerous``
command (``FLUSHALL``, ``KEYS``, ``CONFIG``, ``ACL``, ``MONITOR``, ...):

    aipbx:<instance>:*        events stream, HITL replies (what callers hear), call-back requests, channel layer
    aipbx, aipbx[^:]*         Celery queues (``aipbx``, ``aipbx.long``, their priority lists)
    _kombu.binding.*, unacked*, celery-task-meta-*, *.celery.pidbox*, celeryev.*
                              the rest of the broker, the results, the workers' control queues
                              and event queues (gossip: ``make up``'s workers run with it)

One user for all of an instance's processes, not one per process: the web console writes the HITL
replies the ARI app reads, both send and both consume Celery tasks, so per-process users would
share every key that matters and narrow nothing.

Where the protection is real: on a Redis whose ``default`` user is off or has a password (the
Compose deployment's: :func:`acl_file`). On a shared Redis whose ``default`` user is open (the
system Redis of a development machine and CI), the user keeps an instance off other instances' keys
and off dangerous commands, and the suite runs through it, but any local process can still log in as
``default``: close that user to make it a barrier (docs/operations.md).

Users are made through an admin connection (``AIPBX_REDIS_ADMIN_URL``, by default the instance's
Redis URL without credentials, i.e. ``default``); ``ACL SETUSER ... reset`` makes it idempotent.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = [
    "acl_file",
    "credentials",
    "key_patterns",
    "remove_user",
    "rules",
    "set_user",
    "suite_user",
    "user_name",
    "with_credentials",
    "without_credentials",
]

#: The Celery broker's and result backend's keys (kombu without a global_keyprefix).
CELERY_KEYS = (
    "aipbx",
    "aipbx[^:]*",
    "_kombu.binding.*",
    "unacked*",
    "celery-task-meta-*",
    "*.celery.pidbox*",
    "celeryev.*",
)


def user_name(instance: str) -> str:
    """The ACL user of ``instance``."""
    return f"aipbx-{instance}"


def key_patterns(namespace: str) -> list[str]:
    """Key globs of an instance; ``namespace`` is its name (or a glob, e.g. ``test*`` for a test session)."""
    return [f"aipbx:{namespace}:*", *CELERY_KEYS]


def rules(password: str, namespace: str) -> list[str]:
    """``ACL SETUSER`` arguments: a fresh user with only its password, keys and safe commands.

    The password is stored as its SHA-256 (``#<hex>``), never in clear in an ACL file or ``ACL LIST``.
    Channels stay open (``&*``): Celery's control and result notices are pub/sub with fixed names.
    """
    if not password:
        raise ValueError("a Redis ACL user needs a password")
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ["reset", "on", f"#{digest}", *(f"~{p}" for p in key_patterns(namespace)), "&*", "+@all", "-@dangerous"]


def acl_file(users: dict[str, tuple[str, str]]) -> str:
    """An ACL file (``redis-server --aclfile``): ``default`` off, and ``{user: (password, namespace)}``."""
    # No comment lines: Redis refuses to start on anything but "user ..." lines.
    lines = ["user default off resetkeys resetchannels -@all"]
    for name, (password, namespace) in users.items():
        lines.append(" ".join(["user", name, *[r for r in rules(password, namespace) if r != "reset"]]))
    return "\n".join(lines) + "\n"


def credentials(url: str) -> tuple[str, str]:
    """``(user, password)`` in a ``redis://`` URL, empty when it has none."""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` logging in as ``user`` with ``password`` (any credentials it had are replaced)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def set_user(admin_url: str, user: str, password: str, namespace: str) -> None:
    """Create or reset ``user`` on the Redis of ``admin_url`` (which must be allowed ``ACL SETUSER``)."""
    import redis

    with redis.Redis.from_url(admin_url, socket_timeout=5) as client:
        client.execute_command("ACL", "SETUSER", user, *rules(password, namespace))


def remove_user(admin_url: str, user: str) -> bool:
    """Delete ``user``; False if it did not exist."""
    import redis

    with redis.Redis.from_url(admin_url, socket_timeout=5) as client:
        return bool(client.execute_command("ACL", "DELUSER", user))


# --- the test session's user ---------------------------------------------------------------------
_TEST_USER = re.compile(r"^aipbx-test-(\d+)-[0-9a-f]+$")


def suite_user(admin_url: str, session: str) -> tuple[str, str]:
    """A user for this test session's processes (every instance named ``test*``); returns ``(user, password)``.

    Users left by sessions whose process is gone (killed before they could remove theirs) are removed.
    """
    import secrets

    import redis

    with redis.Redis.from_url(admin_url, socket_timeout=5, decode_responses=True) as client:
        for name in client.execute_command("ACL", "USERS"):
            found = _TEST_USER.match(name)
            if found and not _alive(int(found.group(1))):
                client.execute_command("ACL", "DELUSER", name)
    user, password = f"aipbx-test-{os.getpid()}-{session}", secrets.token_hex(24)
    set_user(admin_url, user, password, "test*")
    return user, password


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
