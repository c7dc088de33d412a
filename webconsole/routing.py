"""Websocket URL patterns for ``webconsole.asgi`` (the live console pages add theirs here)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
