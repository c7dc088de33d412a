"""Read the web console's environment once into a typed object.

Every process (Daphne, the Celery worker, ``manage.py``) imports the settings
package once; ``base.py`` calls :func:`read_env` exactly one time for what only the
console reads (database, secret key, hosts). What the ARI app reads too (Redis, log
level, paths, providers) is parsed by the shared core, :mod:`aipbx.settings`.

This module only parses strings, so it is tested without Django running.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/aipbx"


@dataclass(frozen=True, slots=True)
class WebEnv:
    """The environment of one web-console process, read once at start-up."""

    database_url: str
    secret_key: str | None
    allowed_hosts: tuple[str, ...]
    csrf_trusted_origins: tuple[str, ...]


def read_env(environ: Mapping[str, str] | None = None) -> WebEnv:
    """Capture the variables the web console understands.

    Empty values count as unset: ``KEY=`` in an env file must not become an
    empty secret or an empty host name.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    return WebEnv(
        database_url=get("AIPBX_DATABASE_URL") or DEFAULT_DATABASE_URL,
        secret_key=get("DJANGO_SECRET_KEY"),
        allowed_hosts=split_list(get("DJANGO_ALLOWED_HOSTS")),
        csrf_trusted_origins=split_list(get("DJANGO_CSRF_TRUSTED_ORIGINS")),
    )


def split_list(value: str | None) -> tuple[str, ...]:
    """Split a comma- or space-separated variable into its non-empty items."""
    if not value:
        return ()
    return tuple(item for item in value.replace(",", " ").split() if item)


def get_mandatory_secret(name: str, value: str | None) -> str:
    """Return ``value`` or stop start-up with a message that says what to set."""
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. The production settings refuse to start without it: "
            f"set {name} in the environment (for Docker: secrets/{name}, written by the first docker compose up). "
            "A good value: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return value


def database_url(db: Mapping[str, Any]) -> str:
    """The ``AIPBX_DATABASE_URL`` of a DATABASES entry (the inverse of :func:`parse_database_url`, options aside).

    Subprocesses started by tests and benchmarks get the database they must use this way.
    """
    auth = quote(db["USER"], safe="") + (":" + quote(db["PASSWORD"], safe="") if db.get("PASSWORD") else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}@{quote(db['HOST'] or '127.0.0.1', safe='')}{port}/{quote(db['NAME'], safe='')}"


def parse_database_url(url: str) -> dict[str, Any]:
    """Turn ``postgresql://user:password@host:port/name?option=value`` into a Django DATABASES entry.

    Follows the libpq URI form: user, password and a Unix-socket host may be
    percent-encoded (``postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/aipbx``),
    ``?host=`` and ``?port=`` override the authority, and every other query
    parameter (``sslmode``, ``connect_timeout``, ...) is passed to libpq through
    ``OPTIONS``.

    Raises:
        ImproperlyConfigured: the URL is not a PostgreSQL URL or names no database.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"AIPBX_DATABASE_URL must start with postgresql://, got scheme {parts.scheme!r}")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("AIPBX_DATABASE_URL names no database (expected .../aipbx)")

    # Split the authority by hand: urlsplit().hostname lower-cases, which would
    # corrupt a percent-encoded socket directory.
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    host, port = _split_host_port(hostport)

    options = dict(parse_qsl(parts.query, keep_blank_values=False))
    host = options.pop("host", host)
    port = options.pop("port", port)
    if port and not port.isdigit():
        raise ImproperlyConfigured(f"AIPBX_DATABASE_URL has a bad port {port!r}")

    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": unquote(host),
        "PORT": port,
        "OPTIONS": options,
    }


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [::1]:5432
        host, _, rest = hostport[1:].partition("]")
        return host, rest.removeprefix(":")
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, "")


def redis_url_with_db(url: str, db: int) -> str:
    """Return ``url`` pointing at Redis database number ``db`` (tests use db 15)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))
