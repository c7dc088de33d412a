from __future__ import annotations

from django.urls import path

from webconsole.hitl import views

app_name = "hitl"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<str:request_id>/", views.detail, name="detail"),
    path("<str:request_id>/claim", views.claim, name="claim"),
    path("<str:request_id>/answer", views.answer, name="answer"),
]
