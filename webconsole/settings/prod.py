"""Production settings: secrets (the recordings key too) are mandatory and every cookie and redirect assumes TLS.

Daphne speaks plain HTTP behind a TLS-terminating reverse proxy, which must set
``X-Forwarded-Proto: https`` (and drop any such header sent by clients); the header counts only
from ``AIPBX_TRUSTED_PROXIES`` (loopback by default).
``manage.py check --deploy --settings=webconsole.settings.prod`` is clean.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from webconsole.core.proxy import parse_networks
from webconsole.settings.base import *  # noqa: F403
from webconsole.settings.base import AIPBX_RECORDINGS_KEYRING, ENV
from webconsole.settings.env import get_mandatory_secret

DEBUG = False
SECRET_KEY = get_mandatory_secret("DJANGO_SECRET_KEY", ENV.secret_key)
if not ENV.allowed_hosts:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set: with DEBUG off Django would answer 400 to every request. "
        "Set it to the console's host name(s), comma-separated, e.g. DJANGO_ALLOWED_HOSTS=pbx.example.com"
    )
ALLOWED_HOSTS = list(ENV.allowed_hosts)
# Recordings are never kept or written in clear in production (aipbx.sealing); the ARI app refuses the same way.
if AIPBX_RECORDINGS_KEYRING is None:
    raise ImproperlyConfigured(
        "AIPBX_RECORDINGS_KEYS is not set. The production settings refuse to start without it: the console, "
        "the worker and the ARI app need the master key that seals and opens recordings (Docker: "
        "secrets/AIPBX_RECORDINGS_KEYS, written by the first docker compose up; the same value everywhere). "
        "A new one: python -m aipbx.sealing newkey"
    )

# Believed only from AIPBX_TRUSTED_PROXIES (webconsole.core.proxy strips it from anyone else).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
parse_networks(AIPBX_TRUSTED_PROXIES)  # a typo fails at start-up, not on every request  # noqa: F405
SECURE_SSL_REDIRECT = True
# Probes (Docker, load balancers) call these over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
SECURE_HSTS_SECONDS = 365 * 24 * 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = True
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
