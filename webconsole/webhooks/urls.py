from __future__ import annotations

from django.urls import path

from webconsole.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.index, name="index"),
    path("deliveries/<int:delivery_id>/retry", views.retry, name="retry"),
]
