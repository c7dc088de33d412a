"""Test settings: the real PostgreSQL and Redis, kept apart from dev data.

pytest-django creates ``test_<name>`` (``test_aipbx``) from the same database
URL; Redis database 15 holds the channel layer, the Celery broker and results.
"""

from __future__ import annotations

import os as _os
import tempfile
import uuid
from pathlib import Path

from contract import stream_name
from webconsole.settings.base import *  # noqa: F403
from webconsole.settings.base import CORE
from webconsole.settings.env import redis_url_with_db

# One id per test session, inherited by the processes the session starts (Daphne, the event
# consumer, Celery workers): their channel groups must be the session's own. Sessions side by side
# (a demo, a developer's run and a helper's) would otherwise see each other's live events.
_SESSION_PROCESS = "AIPBX_TEST_SESSION" not in _os.environ  # pytest itself, not a process it started
TEST_SESSION = _os.environ.setdefault("AIPBX_TEST_SESSION", uuid.uuid4().hex[:12])


def _session_redis_url(url: str) -> str:
    """The suite runs with Redis authentication on: the session's processes log in as its own ACL user.

    Made here (the settings are the first thing pytest-django loads) by the pytest process, through the
    given URL's login (the ``default`` user of the system Redis), and handed to every process the
    session starts in ``AIPBX_REDIS_URL``; tests/conftest.py removes it when the session ends.
    A URL that already carries a user is used as it is.
    """
    import sys

    import redis

    from stack.redis_acl import credentials, suite_user, with_credentials

    if not _SESSION_PROCESS or credentials(url)[0]:
        return url
    try:
        user, password = suite_user(url, TEST_SESSION)
    except (redis.RedisError, OSError) as exc:  # the tests that need Redis will say so themselves
        print(f"webconsole.settings.test: no Redis user for this session ({exc!r})", file=sys.stderr)
        return url
    _os.environ["AIPBX_REDIS_URL"] = url = with_credentials(url, user, password)
    _os.environ["AIPBX_TEST_REDIS_USER"] = user
    return url


AIPBX_EVENTS_REDIS_URL = _session_redis_url(CORE.redis_url)

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

AIPBX_REDIS_URL = redis_url_with_db(AIPBX_EVENTS_REDIS_URL, 15)
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
AIPBX_EVENTS_STREAM = stream_name(AIPBX_INSTANCE)
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

# The suite's assertions read the pages in English (the msgids); the Korean default of the base
# settings is what tests/web/test_i18n.py checks, with LANGUAGE_CODE set back to "ko-kr" there.
LANGUAGE_CODE = "en"
