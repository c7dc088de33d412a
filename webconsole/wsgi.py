"""WSGI entry point, for tools that want one; the console itself is served over ASGI by Daphne."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.prod")

application = get_wsgi_application()
