"""The core app: health probes and the tasks every deployment relies on."""

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "webconsole.core"
    label = "core"
    verbose_name = "AI PBX core"
