from __future__ import annotations

from django.urls import path

from webconsole.voicemail import views

app_name = "voicemail"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:voicemail_id>/audio.wav", views.audio, name="audio"),
    path("<int:voicemail_id>/handled", views.handled, name="handled"),
]
