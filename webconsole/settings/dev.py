"""Developer settings: DEBUG on, local hosts allowed, everything else from ``base``."""

from __future__ import annotations

from webconsole.settings.base import *  # noqa: F403
from webconsole.settings.base import ALLOWED_HOSTS

DEBUG = True
ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]
