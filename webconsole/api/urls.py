"""URLs of the REST API, mounted at ``/api/``: the endpoints under ``v1/``, the OpenAPI schema at ``schema/``.

``GET /api/schema/`` answers YAML, ``?format=json`` JSON (authenticated, like everything here).
Machines send ``Authorization: Token <key>``; a key is made with ``manage.py drf_create_token <user>``.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from webconsole.api import views

app_name = "api"

# "/?": the trailing slash is optional, so /api/v1/operators/me and /api/v1/operators/me/ both
# work for every method (APPEND_SLASH can only redirect GETs).
router = DefaultRouter()
router.trailing_slash = "/?"  # the constructor only takes True/False
router.register("calls", views.CallViewSet, basename="call")
router.register("knowledge/items", views.KnowledgeItemViewSet, basename="knowledge-item")
router.register("extensions", views.ExtensionViewSet, basename="extension")
router.register("operators", views.OperatorViewSet, basename="operator")
router.register("hitl", views.HitlRequestViewSet, basename="hitl")

urlpatterns = [
    re_path(r"^v1/knowledge/search/?$", views.KnowledgeSearchView.as_view(), name="knowledge-search"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
