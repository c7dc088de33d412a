"""REST API views (``/api/v1/``): calls, knowledge, extensions, operators and their presence, help requests.

The rules are the HTML console's (``webconsole.calls.access``): every queryset is
narrowed to the user's extensions, so an object of another extension answers
404 on every verb. Knowledge changes go through ``knowledge.actions`` (``do_*``),
which update the vector index after the commit exactly as the console pages do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge.actions import do_add_item, do_delete_item, do_edit_item, do_set_status, get_retriever
from knowledge.models import KnowledgeItem, Source, Status
from knowledge.retrieval.errors import BadInput, RetrievalError
from webconsole.api import serializers as s
from webconsole.api.permissions import OwnerVisible
from webconsole.calls import access
from webconsole.calls.actions import do_set_presence
from webconsole.calls.models import Call, Operator
from webconsole.calls.views import operator_for
from webconsole.hitl import actions as hitl_actions
from webconsole.hitl.models import OPEN as HITL_OPEN
from webconsole.hitl.queries import visible_requests

PERMISSIONS = [IsAuthenticated, OwnerVisible]
NOT_FOUND = OpenApiResponse(description="No such object among your extensions.")
INVALID = OpenApiResponse(description='Invalid input: {"field": ["message", ...], ...}.')


class KnowledgeUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The knowledge index or the embedding model is unavailable; try again."
    default_code = "knowledge_unavailable"


@contextmanager
def knowledge_errors() -> Iterator[None]:
    """Translate the errors of ``knowledge.actions`` into API answers (400/404/503, never 500)."""
    try:
        yield
    except KnowledgeItem.DoesNotExist as exc:  # deleted meanwhile
        raise NotFound() from exc
    except (BadInput, ValueError) as exc:  # OwnerRequired is a ValueError too
        raise ValidationError({"non_field_errors": [str(exc)]}) from exc
    except RetrievalError as exc:
        raise KnowledgeUnavailable() from exc


def query_params(request: Request, serializer_class: type[s.serializers.Serializer]) -> dict[str, Any]:
    """The validated query parameters (a 400 names each bad one)."""
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- calls ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Call history",
        parameters=[s.CallFilterSerializer],
        responses={200: s.CallSerializer(many=True), 400: INVALID},
    ),
    retrieve=extend_schema(
        summary="One call with its transcript", responses={200: s.CallDetailSerializer, 404: NOT_FOUND}
    ),
    partial_update=extend_schema(
        summary="Notes, follow-up flag, callback number, HITL status",
        request=s.CallUpdateSerializer,
        responses={200: s.CallDetailSerializer, 400: INVALID, 404: NOT_FOUND},
    ),
)
class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    permission_classes = PERMISSIONS
    lookup_field = "call_id"
    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "patch", "head", "options"]
    queryset = Call.objects.none()  # the real one is per user, see get_queryset

    def get_serializer_class(self) -> type[s.serializers.Serializer]:
        if self.action == "list":
            return s.CallSerializer
        if self.action == "partial_update":
            return s.CallUpdateSerializer
        return s.CallDetailSerializer

    def get_queryset(self) -> QuerySet[Call]:
        calls = access.calls_for(self.request.user)
        if self.action == "list":
            return self._filtered(calls).order_by("-started", "-id")
        return calls.prefetch_related("turns", "transfers__operator")

    def _filtered(self, calls: QuerySet[Call]) -> QuerySet[Call]:
        data = query_params(self.request, s.CallFilterSerializer)
        tz = timezone.get_current_timezone()
        if data.get("date_from"):
            calls = calls.filter(started__gte=datetime.combine(data["date_from"], time.min, tz))
        if data.get("date_to"):
            calls = calls.filter(started__lt=datetime.combine(data["date_to"] + timedelta(days=1), time.min, tz))
        if data.get("extension"):
            calls = calls.filter(callee=data["extension"])
        if data.get("ai") is not None:
            calls = calls.filter(ai_handled=data["ai"])
        if data.get("hitl"):
            calls = calls.filter(hitl_status=data["hitl"])
        if data.get("q"):
            calls = calls.filter(caller__icontains=data["q"])
        return calls

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        call = self.get_object()
        serializer = s.CallUpdateSerializer(call, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(s.CallDetailSerializer(self.get_object()).data)


# --- knowledge -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Knowledge items",
        parameters=[s.KnowledgeFilterSerializer],
        responses={200: s.KnowledgeItemSerializer(many=True), 400: INVALID},
    ),
    retrieve=extend_schema(
        summary="One item with its versions", responses={200: s.KnowledgeItemDetailSerializer, 404: NOT_FOUND}
    ),
    create=extend_schema(
        summary="Add a fact (near duplicates merge into the existing item)",
        request=s.KnowledgeItemCreateSerializer,
        responses={
            201: s.KnowledgeAddResultSerializer(many=True),
            200: s.KnowledgeAddResultSerializer(many=True),
            400: INVALID,
        },
    ),
    update=extend_schema(
        summary="Edit an item: the result is a new version",
        request=s.KnowledgeItemUpdateSerializer,
        responses={200: s.KnowledgeItemDetailSerializer, 400: INVALID, 404: NOT_FOUND},
    ),
    partial_update=extend_schema(
        summary="Edit some fields of an item: the result is a new version",
        request=s.KnowledgeItemUpdateSerializer,
        responses={200: s.KnowledgeItemDetailSerializer, 400: INVALID, 404: NOT_FOUND},
    ),
    destroy=extend_schema(summary="Delete an item (and its history)", responses={204: None, 404: NOT_FOUND}),
)
class KnowledgeItemViewSet(viewsets.ModelViewSet):
    permission_classes = PERMISSIONS
    lookup_value_regex = r"[0-9]+"
    queryset = KnowledgeItem.objects.none()  # the real one is per user, see get_queryset

    def get_serializer_class(self) -> type[s.serializers.Serializer]:
        return {
            "list": s.KnowledgeItemSerializer,
            "create": s.KnowledgeItemCreateSerializer,
            "update": s.KnowledgeItemUpdateSerializer,
            "partial_update": s.KnowledgeItemUpdateSerializer,
        }.get(self.action, s.KnowledgeItemDetailSerializer)

    def get_queryset(self) -> QuerySet[KnowledgeItem]:
        items = access.filter_by_owner(KnowledgeItem.objects.all(), self.request.user, "owner")
        if self.action != "list":
            return items.prefetch_related("versions__edited_by")
        data = query_params(self.request, s.KnowledgeFilterSerializer)
        for field in ("owner", "category", "status", "source"):
            if data.get(field):
                items = items.filter(**{field: data[field]})
        if data.get("q"):
            items = items.filter(text__icontains=data["q"])
        return items.order_by("owner", "-created", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.KnowledgeItemCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with knowledge_errors():
            results = do_add_item(
                data["owner"],
                data["text"],
                category=data["category"],
                keywords=data.get("keywords", []),
                source=Source.MANUAL,
                status=data["status"],
                edited_by=request.user,
            )
        body = s.KnowledgeAddResultSerializer(results, many=True).data
        created = any(result.created for result in results)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        item = self.get_object()
        serializer = s.KnowledgeItemUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        with knowledge_errors():
            do_edit_item(item.pk, edited_by=request.user, **serializer.validated_data)
        return Response(s.KnowledgeItemDetailSerializer(self.get_object()).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        item = self.get_object()
        with knowledge_errors():
            do_delete_item(item.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Approve: the AI may use the item",
        request=None,
        responses={200: s.KnowledgeItemDetailSerializer, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._set_status(Status.APPROVED)

    @extend_schema(
        summary="Reject: the item leaves the AI's knowledge",
        request=None,
        responses={200: s.KnowledgeItemDetailSerializer, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._set_status(Status.REJECTED)

    def _set_status(self, new_status: str) -> Response:
        item = self.get_object()
        with knowledge_errors():
            do_set_status(item.pk, new_status)
        return Response(s.KnowledgeItemDetailSerializer(self.get_object()).data)


class KnowledgeSearchView(APIView):
    """Semantic search of one extension's approved knowledge, as the AI searches it during a call."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Semantic search with scores",
        parameters=[s.KnowledgeSearchQuerySerializer],
        responses={200: s.KnowledgeSearchResultSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        data = query_params(request, s.KnowledgeSearchQuerySerializer)
        owner, question = data["owner"].strip(), data["q"]
        if not access.can_see_extension(request.user, owner):
            raise NotFound()
        with knowledge_errors():
            result = async_to_sync(get_retriever().search)(owner, question)
        passages = [
            {
                "item_id": _int_or_none(p.metadata.get("item_id", p.id)),
                "text": p.text,
                "score": p.score,
                "relevant": p.score >= result.threshold,
                "category": str(p.metadata.get("category", "")),
                "source": str(p.metadata.get("source", "")),
            }
            for p in result.passages
        ]
        body = {
            "owner": owner,
            "q": question,
            "passages": passages,
            "confidence": result.confidence,
            "above_threshold": result.above_threshold,
            "threshold": result.threshold,
            "elapsed_s": result.elapsed_s,
        }
        return Response(s.KnowledgeSearchResultSerializer(body).data)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


# --- extensions and operators --------------------------------------------------------------------


@extend_schema_view(list=extend_schema(summary="The extensions you may see"))
class ExtensionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ExtensionSerializer

    def get_queryset(self) -> QuerySet:
        return access.extensions_for(self.request.user).order_by("number")


@extend_schema_view(list=extend_schema(summary="Operators: admins see all, operators those sharing an extension"))
class OperatorViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.OperatorSerializer

    def get_queryset(self) -> QuerySet[Operator]:
        user = self.request.user
        rows = Operator.objects.select_related("user").prefetch_related("extensions").order_by("user__username")
        if access.is_admin(user):
            return rows
        me = access.operator_of(user)
        if me is None:
            return rows.none()
        return rows.filter(Q(pk=me.pk) | Q(extensions__in=me.extensions.all())).distinct()

    def get_object(self) -> Operator:
        # ``me`` has no pk in its URL; DRF's OPTIONS metadata still calls get_object() for its PUT form
        # (that asserted "called with a URL keyword argument named pk": a 500 found by API fuzzing).
        # (OPTIONS runs as action "metadata", so test the URL, not the action name.)
        if (self.lookup_url_kwarg or self.lookup_field) not in self.kwargs:
            return operator_for(self.request.user)
        return super().get_object()

    @extend_schema(
        methods=["GET"], summary="Your role, extensions and presence", request=None, responses=s.OperatorSerializer
    )
    @extend_schema(
        methods=["PUT", "PATCH"],
        summary="Set your presence (read by the HITL logic)",
        request=s.PresenceSerializer,
        responses={200: s.OperatorSerializer, 400: INVALID},
    )
    @action(detail=False, methods=["get", "put", "patch"], pagination_class=None)
    def me(self, request: Request) -> Response:
        operator = operator_for(request.user)
        if request.method in ("PUT", "PATCH"):
            serializer = s.PresenceSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            do_set_presence(operator, serializer.validated_data["status"])  # also a heartbeat
        return Response(s.OperatorSerializer(operator).data)


# --- human in the loop ---------------------------------------------------------------------------


class HitlConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request is no longer yours to answer."
    default_code = "hitl_conflict"


@contextmanager
def hitl_errors() -> Iterator[None]:
    """An operator action refused (taken by another, caller gone) is a 409 with the reason; bad input a 400."""
    try:
        yield
    except hitl_actions.BadAnswer as exc:
        raise ValidationError({"text": [str(exc)]}) from exc
    except hitl_actions.HitlError as exc:
        raise HitlConflict(str(exc)) from exc


@extend_schema_view(
    list=extend_schema(
        summary="Help requests of your extensions",
        parameters=[s.HitlFilterSerializer],
        responses={200: s.HitlRequestSerializer(many=True), 400: INVALID},
    ),
    retrieve=extend_schema(summary="One help request", responses={200: s.HitlRequestSerializer, 404: NOT_FOUND}),
)
class HitlRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = PERMISSIONS
    serializer_class = s.HitlRequestSerializer
    lookup_field = "request_id"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> QuerySet:
        rows = visible_requests(self.request.user)
        if self.action == "list":
            wanted = query_params(self.request, s.HitlFilterSerializer).get("status")
            if wanted == "open":
                rows = rows.filter(status__in=HITL_OPEN)
            elif wanted:
                rows = rows.filter(status=wanted)
        return rows.order_by("-created", "-id")

    @extend_schema(
        summary="Claim a waiting request (409 names who has it)",
        request=None,
        responses={
            200: s.HitlRequestSerializer,
            404: NOT_FOUND,
            409: OpenApiResponse(description="Claimed by someone else, or the caller is gone."),
        },
    )
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, request_id: str | None = None) -> Response:
        item = self.get_object()
        with hitl_errors():
            hitl_actions.do_claim(item.request_id, request.user)
        return Response(s.HitlRequestSerializer(self.get_object()).data)

    @extend_schema(
        summary="Answer: polished and spoken to the caller; optionally saved as pending knowledge",
        request=s.HitlAnswerSerializer,
        responses={
            200: s.HitlRequestSerializer,
            400: INVALID,
            404: NOT_FOUND,
            409: OpenApiResponse(description="Answered or claimed by someone else, or the caller is gone."),
        },
    )
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, request_id: str | None = None) -> Response:
        item = self.get_object()
        serializer = s.HitlAnswerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with hitl_errors():
            hitl_actions.do_answer(item.request_id, request.user, serializer.validated_data["text"])
        if serializer.validated_data["save_to_knowledge"]:
            with knowledge_errors():
                hitl_actions.do_save_to_knowledge(item.request_id, request.user)
        return Response(s.HitlRequestSerializer(self.get_object()).data)
