"""ASGI entry point served by Daphne: HTTP goes to Django, websockets to Channels.

Websocket routes live in ``webconsole.routing``. Origins are checked
against ALLOWED_HOSTS and the session user is attached by ``AuthMiddlewareStack``. Request bodies
over their limit are refused before Django reads them (:mod:`webconsole.core.body_limit`).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

# Deployed entry point: without DJANGO_SETTINGS_MODULE assume prod (fails closed).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.prod")

# Django must be set up before anything imports models (channels.auth does).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from webconsole.core.body_limit import BodyLimit, Limits, install_in_daphne  # noqa: E402
from webconsole.routing import websocket_urlpatterns  # noqa: E402

body_limits = Limits(
    settings.AIPBX_MAX_BODY_BYTES, {path: settings.AIPBX_MAX_UPLOAD_BYTES for path in settings.AIPBX_UPLOAD_PATHS}
)
install_in_daphne(body_limits)  # Daphne reads a whole body before it calls the application

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app, body_limits),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
