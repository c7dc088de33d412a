"""URL configuration: the console pages, admin, login/logout and the health probes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webconsole.core import views as core_views

urlpatterns = [
    path("health", core_views.health, name="health"),
    path("ready", core_views.ready, name="ready"),
    path("metrics", core_views.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # set_language (POST): the header's language switch keeps the choice in a cookie.
    path("i18n/", include("django.conf.urls.i18n")),
    path("knowledge/", include("webconsole.knowledge.urls")),
    path("api/", include("webconsole.api.urls")),
    path("analytics/", include("webconsole.analytics.urls")),
    path("hitl/", include("webconsole.hitl.urls")),
    path("voicemail/", include("webconsole.voicemail.urls")),
    path("webhooks/", include("webconsole.webhooks.urls")),
    path("privacy/", include("webconsole.privacy.urls")),
    path("", include("webconsole.calls.urls")),
]
