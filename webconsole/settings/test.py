"""Test settings: the real PostgreSQL and Redis, kept apart from dev data.

pytest-django creates ``test_<name>`` (``test_aipbx``) from the same database
URL; Redis database 15 holds the channel layer, the Celery broker and results.
"""

from __future__ import annotations

import os as _os
import tempfile
import uuid
from pathlib import Path

from webconsole.settings.base import *  # noqa: F403
from webconsole.settings.base import ENV
from webconsole.settings.env import redis_url_with_db

# One id per test session, inherited by the processes the session starts (Daphne, the event
# consumer, Celery workers): their channel groups must be the session's own. Sessions side by side
# (a demo, a developer's run and a helper's) would otherwise see each other's live events.
TEST_SESSION = _os.environ.setdefault("AIPBX_TEST_SESSION", uuid.uuid4().hex[:12])

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

AIPBX_REDIS_URL = redis_url_with_db(ENV.redis_url, 15)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [AIPBX_REDIS_URL], "prefix": f"aipbx-test-{TEST_SESSION}"},
    },
}
CELERY_BROKER_URL = AIPBX_REDIS_URL
CELERY_RESULT_BACKEND = AIPBX_REDIS_URL
# Several test sessions may share this Redis; a queue per process keeps one
# session's worker from taking another's tasks. The worker fixture passes this
# name to `celery worker -Q` explicitly.
CELERY_TASK_DEFAULT_QUEUE = f"aipbx-test-{uuid.uuid4().hex[:12]}"

# Nothing a test forgets to override may reach a stack running beside the suite (`make demo` leaves
# instance "dev" up: its event stream, HITL replies, knowledge collections and recordings). A
# process the suite starts for a stack instance gets that instance's values in its environment.
AIPBX_INSTANCE = _os.environ.get("AIPBX_INSTANCE", "").strip() or f"test{TEST_SESSION}"
AIPBX_EVENTS_STREAM = f"aipbx:{AIPBX_INSTANCE}:events"
AIPBX_KNOWLEDGE_STORE = _os.environ.get("AIPBX_KNOWLEDGE_STORE", "").strip() or "memory"
AIPBX_KNOWLEDGE_PREFIX = _os.environ.get("AIPBX_KNOWLEDGE_PREFIX", "").strip() or f"kbtest{TEST_SESSION}"
AIPBX_RECORDINGS_DIR = Path(
    _os.environ.get("AIPBX_RECORDINGS_DIR", "").strip()
    or Path(tempfile.gettempdir()) / f"aipbx-test-{TEST_SESSION}" / "recordings"
)

# Hashing with the default PBKDF2 costs ~0.3 s per login; tests only need it to work.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A test database per pytest process: sessions running side by side (a developer's and a helper's,
# or two checkouts) must not drop each other's. Subprocesses started by the tests (Daphne, Celery)
# are given the created database's URL explicitly, so they never derive this name themselves.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_os.getpid()}"}  # noqa: F405

# Login throttling (django-axes) needs the request, which Django's test client login() does not pass;
# tests/web/test_login_throttling.py switches it on, through the real login page.
AXES_ENABLED = False
