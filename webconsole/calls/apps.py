from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "webconsole.calls"
    label = "calls"
    verbose_name = "Calls and operators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from webconsole.calls import signals

        post_migrate.connect(_sync_extensions, sender=self)
        signals.connect()  # open console sockets check again after a logout or a reassignment


def _sync_extensions(sender, **kwargs) -> None:
    """After ``migrate`` the Extension table matches asterisk/extensions.yaml (new installs see 1001…)."""
    from django.conf import settings

    from webconsole.calls.directory import sync_extensions

    if kwargs.get("using", "default") == "default":
        sync_extensions(settings.AIPBX_EXTENSIONS_FILE)
