from __future__ import annotations

from django.urls import path

from webconsole.calls import extension_views, views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("calls/", views.call_list, name="calls"),
    path("calls/<str:call_id>/", views.call_detail, name="call"),
    path("calls/<str:call_id>/audio/<str:name>.wav", views.call_audio, name="call-audio"),
    path("calls/<str:call_id>/callback", views.call_back, name="callback"),
    path("calls/<str:call_id>/take", views.take_call, name="take"),
    path("calls/<str:call_id>/listen", views.listen_call, name="listen"),
    path("calls/<str:call_id>/take-over", views.take_over, name="take-over"),
    path("operators/", views.operators, name="operators"),
    path("operators/presence", views.set_presence, name="presence"),
    path("extensions/", extension_views.extension_list, name="extensions"),
    path("extensions/<str:number>/", extension_views.extension_detail, name="extension"),
]
