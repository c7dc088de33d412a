"""Test settings: the real PostgreSQL and Redis, kept apart from dev data.

pytest-django creates ``test_<name>`` (``test_aipbx``) from the same database
URL; Redis database 15 holds the channel layer, the Celery broker and results.
"""

from __future__ import annotations

import uuid

from webconsole.settings.base import *  # noqa: F403
from webconsole.settings.base import ENV
from webconsole.settings.env import redis_url_with_db

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

AIPBX_REDIS_URL = redis_url_with_db(ENV.redis_url, 15)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [AIPBX_REDIS_URL], "prefix": "aipbx-test"},
    },
}
CELERY_BROKER_URL = AIPBX_REDIS_URL
CELERY_RESULT_BACKEND = AIPBX_REDIS_URL
# Several test sessions may share this Redis; a queue per process keeps one
# session's worker from taking another's tasks. The worker fixture passes this
# name to `celery worker -Q` explicitly.
CELERY_TASK_DEFAULT_QUEUE = f"aipbx-test-{uuid.uuid4().hex[:12]}"

# Hashing with the default PBKDF2 costs ~0.3 s per login; tests only need it to work.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A test database per pytest process: sessions running side by side (a developer's and a helper's,
# or two checkouts) must not drop each other's. Subprocesses started by the tests (Daphne, Celery)
# are given the created database's URL explicitly, so they never derive this name themselves.
import os as _os  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_os.getpid()}"}  # noqa: F405
