from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "webconsole.analytics"
    label = "analytics"
    verbose_name = "Analytics"
