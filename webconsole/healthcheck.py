"""Container health check: ``python -m webconsole.healthcheck [URL]`` exits 0 iff URL answers 200.

Docker probes from inside the container, where the natural Host header
(``127.0.0.1:8000``) is not in ALLOWED_HOSTS and prod Django would answer 400.
So the probe presents the first allowed host name instead. The default URL is
``/health`` (liveness); pass ``.../ready`` to include PostgreSQL and Redis.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from webconsole.settings.env import read_env

DEFAULT_URL = "http://127.0.0.1:8000/health"


def probe_host(allowed_hosts: tuple[str, ...]) -> str:
    """A Host header that Django accepts for these ALLOWED_HOSTS patterns."""
    for pattern in allowed_hosts:
        if pattern != "*":
            return pattern.lstrip(".")
    return "localhost"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else DEFAULT_URL
    request = urllib.request.Request(url, headers={"Host": probe_host(read_env().allowed_hosts)})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"health check {url} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
