"""Settings shared by every web-console process (Daphne, Celery worker, manage.py).

The environment is read once, here, into ``ENV``; the layers on top (``dev``,
``test``, ``prod``) only derive from it. Variables:

- ``AIPBX_DATABASE_URL``: PostgreSQL URL (default ``postgresql://postgres@127.0.0.1:5432/aipbx``).
- ``DJANGO_SECRET_KEY``: mandatory in ``prod``; a dev-only default elsewhere.
- ``DJANGO_ALLOWED_HOSTS`` / ``DJANGO_CSRF_TRUSTED_ORIGINS``: comma- or space-separated.

What the ARI app reads too (instance, Redis, log level and format, recordings, CDR, the extension
directory, hold music, the knowledge store, the STT and LLM providers) comes from the shared core's
one parse, ``CORE`` (:mod:`aipbx.settings`); the Django setting names stay as they were.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from aipbx.logs import django_logging, secrets_from_env
from aipbx.settings import core_settings
from contract import stream_name
from webconsole.settings.env import parse_database_url, read_env

ENV = read_env()
CORE = core_settings()

BASE_DIR = Path(__file__).resolve().parents[2]

# Never used by prod (which demands DJANGO_SECRET_KEY); the django-insecure-
# prefix makes `check --deploy` flag it if it ever leaks into a deployment.
SECRET_KEY = ENV.secret_key or "django-insecure-aipbx-dev-only-do-not-deploy-5c1f0e7a9b"
DEBUG = False
ALLOWED_HOSTS: list[str] = list(ENV.allowed_hosts)
CSRF_TRUSTED_ORIGINS: list[str] = list(ENV.csrf_trusted_origins)

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's so dev serves ASGI too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webconsole.core",
    "webconsole.calls",
    "webconsole.analytics",
    "webconsole.hitl",
    "webconsole.voicemail",
    "webconsole.webhooks",
    "knowledge",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "webconsole.api",
    "axes",  # login throttling: failed logins per (user name, client address)
]

MIDDLEWARE = [
    # First: X-Forwarded-Proto is believed only from AIPBX_TRUSTED_PROXIES (SecurityMiddleware reads it).
    "webconsole.core.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login with 429
]

# --- Login throttling (django-axes) ----------------------------------------------------------------
# Five failed logins for one user name from one client address lock that pair out for 15 minutes
# (429); a success resets the count. `manage.py axes_reset` lifts every lock. The client address
# comes from X-Forwarded-For only through AIPBX_TRUSTED_PROXIES (webconsole.core.proxy.client_ip):
# behind the proxy every request would otherwise come from 127.0.0.1.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AIPBX_LOGIN_FAILURE_LIMIT", "").strip() or "5")
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AIPBX_LOGIN_COOLOFF_MIN", "").strip() or "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "webconsole.core.proxy.client_ip"

# The reverse proxies whose X-Forwarded-* headers count (addresses or networks, comma-separated).
AIPBX_TRUSTED_PROXIES = [
    v for v in (os.environ.get("AIPBX_TRUSTED_PROXIES", "").strip() or "127.0.0.1,::1").split(",") if v.strip()
]

ROOT_URLCONF = "webconsole.urls"
ASGI_APPLICATION = "webconsole.asgi.application"
WSGI_APPLICATION = "webconsole.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webconsole" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webconsole.calls.context.console",
            ],
        },
    },
]

DATABASES = {"default": parse_database_url(ENV.database_url)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Korean unless the browser asks for English (Accept-Language) or the header's switch chose it (a
# cookie); LocaleMiddleware decides per request. The catalogs are locale/<lang>/LC_MESSAGES/django.po,
# compiled to .mo (generated, not in git) by `python -m stack.catalogs`: make setup, the test session
# and the Docker image run it.
LANGUAGE_CODE = "ko-kr"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates in each language's own style (templates name a format, e.g. |date:"SHORT_DATETIME_FORMAT").
FORMAT_MODULE_PATH = ["webconsole.formats"]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# WhiteNoise serves the console's CSS/JS and the admin's from every process, DEBUG or not; files
# collected into STATIC_ROOT (the Docker image runs collectstatic) win, the app folders fill in.
WHITENOISE_USE_FINDERS = True

# --- Request bodies: refused over these sizes before Django reads them (webconsole.core.body_limit) ---
AIPBX_MAX_BODY_BYTES = int(os.environ.get("AIPBX_MAX_BODY_BYTES", "").strip() or 1024 * 1024)
# The knowledge import takes files (5 MB each, knowledge.importing.MAX_FILE_BYTES): a larger bound there.
AIPBX_MAX_UPLOAD_BYTES = int(os.environ.get("AIPBX_MAX_UPLOAD_BYTES", "").strip() or 32 * 1024 * 1024)
AIPBX_UPLOAD_PATHS = ("/knowledge/import/", "/extensions/")
# Uploaded hold music (webconsole.calls.extension_forms): the ARI app reads the same folder.
AIPBX_HOLD_MUSIC_DIR = CORE.hold_music_dir

# --- Live console sockets: who may see what is checked again this often (and on logout, reassignment) ---
AIPBX_WS_RECHECK_S = float(os.environ.get("AIPBX_WS_RECHECK_S", "").strip() or "5")
# --- Operator presence (webconsole.calls.presence): every console socket is asked for a heartbeat this
# often; an operator none of whose pages answered for AIPBX_PRESENCE_TIMEOUT_S is offline to HITL.
AIPBX_PRESENCE_HEARTBEAT_S = float(os.environ.get("AIPBX_PRESENCE_HEARTBEAT_S", "").strip() or "20")
AIPBX_PRESENCE_TIMEOUT_S = float(os.environ.get("AIPBX_PRESENCE_TIMEOUT_S", "").strip() or "60")
if not 0 < 2 * AIPBX_PRESENCE_HEARTBEAT_S <= AIPBX_PRESENCE_TIMEOUT_S:
    # One lost or late heartbeat must not make a present operator offline.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"AIPBX_PRESENCE_TIMEOUT_S ({AIPBX_PRESENCE_TIMEOUT_S}) must be at least twice "
        f"AIPBX_PRESENCE_HEARTBEAT_S ({AIPBX_PRESENCE_HEARTBEAT_S}), which must be > 0"
    )

# --- Redis: channel layer and Celery -------------------------------------------
AIPBX_REDIS_URL = CORE.redis_url
# Each readiness probe gets this long per dependency (seconds).
AIPBX_READY_TIMEOUT = 1.0
# ... and its answer is kept this long: /ready is anonymous, a flood of it must not open connections.
AIPBX_READY_CACHE_S = float(os.environ.get("AIPBX_READY_CACHE_S", "").strip() or "1.5")

# The layer's keys live under the instance's own Redis namespace, which its Redis user may touch
# (stack/redis_acl.py); channels_redis's default prefix "asgi" is outside it.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [AIPBX_REDIS_URL],
            "prefix": f"aipbx:{CORE.instance}:asgi",
        },
    },
}

CELERY_BROKER_URL = AIPBX_REDIS_URL
CELERY_RESULT_BACKEND = AIPBX_REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task is acknowledged only after it ran, and a worker killed mid-task puts it
# back: tasks must therefore be idempotent (they take ids, see STYLE.md).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "aipbx"
# Imports, transcription and extraction go to "<default>.long" (webconsole.celery.route_task).
CELERY_TASK_ROUTES = ("webconsole.celery.route_task",)
# Every task declares its own limits; these catch one that does not (webconsole.core.time_limits).
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360

# Structured logs (aipbx.logs): JSON lines with AIPBX_LOG_JSON=1, readable otherwise; secrets and
# phone numbers scrubbed. Existing logging.getLogger() calls go through structlog's formatter.
LOGGING = django_logging(CORE.log_level, CORE.log_json, secrets=[SECRET_KEY, *secrets_from_env(os.environ)])
# /metrics: the bearer token Prometheus sends (webconsole.core.views.metrics); empty = /metrics is off (403).
AIPBX_METRICS_TOKEN = os.environ.get("AIPBX_METRICS_TOKEN", "").strip()

# --- Knowledge base: PostgreSQL is the source of truth, the vector store an index ---
import os as _os  # noqa: E402

AIPBX_KNOWLEDGE_STORE = CORE.knowledge.store  # chroma | memory (none is the ARI app's only)
AIPBX_CHROMA_HOST = CORE.knowledge.chroma_host
AIPBX_CHROMA_PORT = CORE.knowledge.chroma_port
# Sent as a bearer token when set; the stack's own chroma server checks none (docs/operations.md).
AIPBX_CHROMA_TOKEN = CORE.knowledge.chroma_token
AIPBX_KNOWLEDGE_PREFIX = CORE.knowledge.prefix
AIPBX_KNOWLEDGE_MIN_CONFIDENCE = float(_os.environ.get("AIPBX_KNOWLEDGE_MIN_CONFIDENCE", "").strip() or "0.7")
AIPBX_RECORDINGS_DIR = CORE.recordings_dir
# Master keys that seal and open recordings (aipbx.sealing); mandatory in prod. None (dev, test): clear
# recordings only, and `manage.py check` warns.
AIPBX_RECORDINGS_KEYRING = CORE.recordings_keys
AIPBX_EXTENSIONS_FILE = CORE.extensions_file
# Where the knowledge app reads the extension directory from (it never imports the console itself):
# the console's Extension table, the source of truth once seeded from the YAML above.
AIPBX_DIRECTORY_SOURCE = "webconsole.calls.directory.current_directory"

# --- Call events from the ARI app (a Redis Stream per stack instance) ---------------------------
AIPBX_INSTANCE = CORE.instance
AIPBX_EVENTS_STREAM = stream_name(AIPBX_INSTANCE)
# The stream lives where the ARI app writes it (its AIPBX_REDIS_URL), not in the test's channel-layer db.
AIPBX_EVENTS_REDIS_URL = CORE.redis_url

# --- Knowledge extraction: judge, retries, and Redis redelivery of a dead worker's task ---------
# The post-call judge uses the ARI app's generative model (AIPBX_LLM=gemini|openai and its keys,
# see aipbx.providers.factory); AIPBX_LLM=local (default) means the offline RuleJudge.
# AIPBX_KNOWLEDGE_JUDGE=auto|rule|llm overrides that choice.
AIPBX_LLM = CORE.llm_provider
AIPBX_LLM_ENV = dict(CORE.llm_env)
AIPBX_KNOWLEDGE_JUDGE = _os.environ.get("AIPBX_KNOWLEDGE_JUDGE", "").strip() or "auto"
# Transcripts after the call (webconsole.calls.tasks): the ARI app's recogniser family and models
# (aipbx.providers.factory.build_stt reads these; AIPBX_STT_MODEL_KO serves ko-KR extensions).
AIPBX_STT_ENV = dict(CORE.stt_env)
AIPBX_KNOWLEDGE_MAX_RETRIES = int(_os.environ.get("AIPBX_KNOWLEDGE_MAX_RETRIES", "").strip() or "5")
AIPBX_KNOWLEDGE_RETRY_BACKOFF_S = float(_os.environ.get("AIPBX_KNOWLEDGE_RETRY_BACKOFF_S", "").strip() or "2")
# Where knowledge extraction reads a finished call's transcript (knowledge.transcripts): the console's
# database. A dotted path, so the knowledge app needs no import of the console.
KNOWLEDGE_CALL_TRANSCRIPT = "webconsole.calls.transcripts.finished_call"
# With Redis, a task whose worker died (acks_late) goes back to its queue once it has been
# unacknowledged for visibility_timeout seconds; a worker restores such tasks when it starts and
# every ~100 s after. It must exceed the longest task *and* the longest retry countdown (an ETA
# task waits unacknowledged in a worker), else a live task is delivered twice. The key prefix
# keeps the broker's keys (queues, unacked index) of one deployment apart in a shared Redis.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": float(_os.environ.get("AIPBX_CELERY_VISIBILITY_TIMEOUT", "").strip() or "3600"),
    "global_keyprefix": _os.environ.get("AIPBX_CELERY_KEY_PREFIX", "").strip(),
}

# --- REST API (/api/v1/, schema at /api/schema/): webconsole/api ---------------------------------
# Token first: an anonymous request then gets 401 with "WWW-Authenticate: Token" (DRF takes the
# header from the first class; SessionAuthentication has none and would turn 401 into 403).
# Session auth serves the console's own pages and enforces CSRF on unsafe methods.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "webconsole.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AI PBX console API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Calls, call history and HITL status, the knowledge base, extensions and operator presence. "
        "Operators see the extensions assigned to them (anything else is 404), admins see all. "
        "Machines authenticate with `Authorization: Token <key>` (`manage.py drf_create_token <user>`), "
        "the browser with its session cookie plus the CSRF token on unsafe methods."
    ),
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a field named "status"; each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "PresenceEnum": "webconsole.calls.models.Presence",
        "KnowledgeStatusEnum": "knowledge.models.Status",
        "NewKnowledgeStatusEnum": "webconsole.api.serializers.NEW_ITEM_STATUSES",
    },
}

# --- Analytics: estimated provider prices (webconsole.analytics.stats explains the estimate) -----
# Per minute of AI-handled call for STT and TTS, per 1,000 LLM tokens (≈ characters / 4 of the
# turns' text). 0 by default: the offline local providers cost nothing.
AIPBX_PRICE_STT_PER_MIN = float(_os.environ.get("AIPBX_PRICE_STT_PER_MIN", "").strip() or "0")
AIPBX_PRICE_TTS_PER_MIN = float(_os.environ.get("AIPBX_PRICE_TTS_PER_MIN", "").strip() or "0")
AIPBX_PRICE_LLM_PER_1K_TOKENS = float(_os.environ.get("AIPBX_PRICE_LLM_PER_1K_TOKENS", "").strip() or "0")

# --- Webhooks (webconsole/webhooks): timeout per POST, retries with exponential backoff, sweep ------
AIPBX_WEBHOOK_TIMEOUT_S = float(_os.environ.get("AIPBX_WEBHOOK_TIMEOUT_S", "").strip() or "5")
AIPBX_WEBHOOK_MAX_RETRIES = int(_os.environ.get("AIPBX_WEBHOOK_MAX_RETRIES", "").strip() or "3")
AIPBX_WEBHOOK_BACKOFF_BASE_S = float(_os.environ.get("AIPBX_WEBHOOK_BACKOFF_BASE_S", "").strip() or "10")
# Merged, not assigned: other sections may schedule their own periodic tasks.
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "webhooks-sweep": {"task": "webconsole.webhooks.tasks.sweep_webhooks_task", "schedule": 30.0},
}

# --- Privacy (webconsole/privacy): retention of recordings, transcripts and provenance ----------
INSTALLED_APPS += ["webconsole.privacy"]
# Days a call's recordings, transcript and knowledge provenance are kept; 0 keeps them forever.
AIPBX_RETENTION_DAYS = int(_os.environ.get("AIPBX_RETENTION_DAYS", "").strip() or "90")
# Where the ARI app appends its CDR lines (the same AIPBX_CDR_DIR, read once in aipbx.settings).
AIPBX_CDR_DIR = CORE.cdr_dir
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "privacy-retention": {"task": "webconsole.privacy.tasks.apply_retention_task", "schedule": 24 * 3600.0},
}
# The sweep of recordings left in clear (aipbx.sealing_sweep): every AIPBX_SEAL_SWEEP_S it seals the clear
# files of finished calls; a folder without metadata.json counts as finished once nothing wrote to it for
# AIPBX_SEAL_QUIET_S (MixMonitor writes every 20 ms while a call is up).
AIPBX_SEAL_SWEEP_S = float(_os.environ.get("AIPBX_SEAL_SWEEP_S", "").strip() or "300")
AIPBX_SEAL_QUIET_S = float(_os.environ.get("AIPBX_SEAL_QUIET_S", "").strip() or "600")
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "recordings-seal-sweep": {"task": "webconsole.privacy.tasks.seal_recordings_task", "schedule": AIPBX_SEAL_SWEEP_S},
}
