"""Readiness checks: can this process reach PostgreSQL and Redis right now?

Each check is a plain coroutine that opens its own short-lived connection and
raises on failure; :func:`probe` bounds it by a deadline and turns the outcome
into ``"ok"`` or ``"error: ..."``. :func:`check_all_cached` keeps an answer for
``AIPBX_READY_CACHE_S`` (1.5 s) and lets concurrent probes share one run: ``/ready`` is
anonymous, and a flood of it must not become a flood of new database and Redis
connections. A recovered dependency shows as ``ok`` once the cached answer expires.

The checks use their own async connections rather than Django's: a hung query
on Django's connection could not be abandoned at the deadline without blocking
the thread that every sync view shares.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import psycopg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

OK = "ok"

# OPTIONS keys that Django's PostgreSQL backend consumes itself; the rest are libpq parameters.
_DJANGO_ONLY_OPTIONS = frozenset({"isolation_level", "server_side_binding", "assume_role", "pool"})


def postgres_conninfo(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """libpq connection parameters for a Django ``DATABASES`` entry."""
    params: dict[str, Any] = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
    }
    options = settings_dict.get("OPTIONS") or {}
    params.update({k: v for k, v in options.items() if k not in _DJANGO_ONLY_OPTIONS})
    return {k: v for k, v in params.items() if v not in (None, "")}


async def check_postgres(settings_dict: Mapping[str, Any]) -> None:
    """Connect and run ``SELECT 1``."""
    # autocommit: no transaction, so closing never waits for a ROLLBACK on a
    # server that has stopped answering; close() is local (PQfinish).
    conn = await psycopg.AsyncConnection.connect(autocommit=True, **postgres_conninfo(settings_dict))
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()


async def check_redis(url: str) -> None:
    """Send ``PING`` on a single attempt: whoever polls the probe does the retrying."""
    client = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    try:
        await client.ping()
    finally:
        await client.aclose()


async def probe(check: Awaitable[None], seconds: float) -> str:
    """Await ``check`` for at most ``seconds``; report ``"ok"`` or a one-line error."""
    try:
        async with asyncio.timeout(seconds):
            await check
    except TimeoutError:
        return f"error: no answer within {seconds:g} s"
    except (psycopg.Error, aioredis.RedisError, OSError) as exc:
        # libpq messages span lines; a probe result is one line.
        return "error: " + (" ".join(str(exc).split()) or type(exc).__name__)
    return OK


async def check_all(database: Mapping[str, Any], redis_url: str, seconds: float) -> dict[str, str]:
    """Probe every dependency concurrently, so the whole answer takes about ``seconds`` at worst."""
    postgres, redis = await asyncio.gather(
        probe(check_postgres(database), seconds),
        probe(check_redis(redis_url), seconds),
    )
    return {"postgres": postgres, "redis": redis}


_answers: dict[tuple, tuple[float, dict[str, str]]] = {}  # (where, timeout) -> (monotonic time, checks)
_running: dict[tuple, asyncio.Task[dict[str, str]]] = {}  # probes in flight, shared by concurrent callers


async def check_all_cached(
    database: Mapping[str, Any], redis_url: str, seconds: float, keep_s: float
) -> dict[str, str]:
    """:func:`check_all`, answered from the last run if it ended less than ``keep_s`` seconds ago.

    The key is what is probed (connection parameters, URL, timeout): settings that change point to
    a fresh probe, never to another target's answer.
    """
    key = (tuple(sorted((k, str(v)) for k, v in postgres_conninfo(database).items())), redis_url, seconds)
    answer = _answers.get(key)
    if answer is not None and time.monotonic() - answer[0] < keep_s:
        return answer[1]
    task = _running.get(key)
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.get_running_loop().create_task(check_all(database, redis_url, seconds))
        _running[key] = task
    try:
        checks = await asyncio.shield(task)
    finally:
        if task.done() and _running.get(key) is task:
            del _running[key]
    _answers[key] = (time.monotonic(), checks)
    return checks
