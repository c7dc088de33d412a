"""Check (and on Debian, provide) what the stack needs besides itself: PostgreSQL and Redis.

On this project's machines both already run. On a machine without them ``make up`` installs and
starts the Debian packages when it is root on Debian, and otherwise stops with a message that says
what is missing — never a stack trace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time


class PrereqError(RuntimeError):
    pass


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _apt_install(*packages: str) -> None:
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *packages],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return True
        time.sleep(0.3)
    return False


def ensure_postgres() -> None:
    if port_open("127.0.0.1", 5432):
        return
    if not _can_install():
        raise PrereqError(
            "PostgreSQL is not listening on 127.0.0.1:5432. Install and start it "
            "(Debian: apt-get install postgresql), or run make up as root to let it do so."
        )
    if shutil.which("pg_ctlcluster") is None:
        _apt_install("postgresql")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise PrereqError("PostgreSQL is installed but has no cluster in /etc/postgresql")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    if not _wait_port(5432, 20):
        raise PrereqError("PostgreSQL did not start; see /var/log/postgresql/")


def ensure_redis() -> None:
    if port_open("127.0.0.1", 6379):
        return
    if not _can_install():
        raise PrereqError(
            "Redis is not listening on 127.0.0.1:6379. Install and start it "
            "(Debian: apt-get install redis-server), or run make up as root."
        )
    if shutil.which("redis-server") is None:
        _apt_install("redis-server")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=False,
    )
    if not _wait_port(6379, 10):
        raise PrereqError("Redis did not start")


def ensure_database(name: str) -> None:
    """Create the console's database if it does not exist (trust/peer auth as postgres)."""
    import psycopg

    for conninfo in ("host=127.0.0.1 user=postgres dbname=postgres", "dbname=postgres"):
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return
        except psycopg.OperationalError as exc:
            last = exc
    raise PrereqError(f"cannot connect to PostgreSQL to create database {name}: {last}")
