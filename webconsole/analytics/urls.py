from __future__ import annotations

from django.urls import path

from webconsole.analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.index, name="index"),
    path("data.json", views.data_json, name="data"),
]
