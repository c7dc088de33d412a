"""URL configuration: admin, login/logout and the health probes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from webconsole.core import views as core_views

urlpatterns = [
    path("health", core_views.health, name="health"),
    path("ready", core_views.ready, name="ready"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
# Serves admin CSS/JS only when DEBUG is on (dev under plain `daphne`); in
# production the reverse proxy serves STATIC_ROOT (see docker/README.md).
urlpatterns += staticfiles_urlpatterns()
