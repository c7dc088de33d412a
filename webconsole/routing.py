"""Websocket URL patterns for ``webconsole.asgi``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from webconsole.calls.consumers import CallConsumer, ConsoleConsumer, LiveConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/calls/<str:call_id>/", CallConsumer.as_asgi()),
]
