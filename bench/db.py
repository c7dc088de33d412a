"""A throw-away PostgreSQL database for a benchmark, migrated, dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _admin_dsn(url: str) -> dict[str, Any]:
    from webconsole.settings.env import parse_database_url

    db = parse_database_url(url)
    kwargs = {
        "dbname": "postgres",
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        **db["OPTIONS"],
    }
    return {k: v for k, v in kwargs.items() if v is not None}


@contextmanager
def throwaway_database(prefix: str = "aipbx_bench") -> Iterator[str]:
    """Create ``<prefix>_<random>`` on the configured server; yields its URL; drops it afterwards."""
    import psycopg

    from webconsole.settings.env import DEFAULT_DATABASE_URL, database_url, parse_database_url

    base_url = os.environ.get("AIPBX_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    admin = _admin_dsn(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url({**parse_database_url(base_url), "NAME": name})
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
