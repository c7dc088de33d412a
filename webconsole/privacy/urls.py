from __future__ import annotations

from django.urls import path

from webconsole.privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.index, name="index"),
    path("export", views.export_view, name="export"),
    path("delete", views.delete_view, name="delete"),
]
