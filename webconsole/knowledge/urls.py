"""URLs of the console's knowledge manager (mounted at ``knowledge/``)."""

from __future__ import annotations

from django.urls import path

from webconsole.knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("", views.item_list, name="list"),
    path("add/", views.item_add, name="add"),
    path("<int:item_id>/", views.item_detail, name="item"),
    path("<int:item_id>/edit/", views.item_edit, name="edit"),
    path("<int:item_id>/delete/", views.item_delete, name="delete"),
    path("<int:item_id>/approve/", views.item_approve, name="approve"),
    path("<int:item_id>/reject/", views.item_reject, name="reject"),
    path("import/", views.import_upload, name="import"),
    path("import/jobs/", views.import_jobs, name="imports"),
    path("import/jobs/<int:job_id>.json", views.job_json, name="job-json"),
    path("learning/", views.learning, name="learning"),
    path("calls/<str:call_id>/exclude/", views.exclude_call, name="exclude-call"),
]
