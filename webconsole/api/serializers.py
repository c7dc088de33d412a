"""Serializers of the REST API: what goes out, and what may come in (checked field by field).

Writable serializers are strict: a field they do not know, or one that may not be
changed (a call's ``state``, an item's ``owner`` after creation), is a 400 with
that field named, never silently ignored.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from knowledge.models import Category, KnowledgeItem, KnowledgeVersion, Source, Status
from webconsole.calls import access, presence
from webconsole.calls.models import Call, Extension, HitlStatus, Operator, Presence, Transfer, Turn
from webconsole.hitl.models import HitlRequest

_PHONE = re.compile(r"\+?[0-9 ()-]{2,31}")
#: The statuses an item may be created with (rejected makes no sense for a new fact).
NEW_ITEM_STATUSES = [(Status.APPROVED.value, Status.APPROVED.label), (Status.PENDING.value, Status.PENDING.label)]


#: Keys an HTML form (the browsable API's) sends besides the fields.
_FORM_ONLY = frozenset({"csrfmiddlewaretoken"})


class StrictMixin:
    """Reject input keys that are not writable fields of the serializer."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data.keys()) - writable - _FORM_ONLY)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return super().to_internal_value(data)


# --- calls ---------------------------------------------------------------------------------------


class TurnSerializer(serializers.ModelSerializer):
    latency_ms = serializers.DictField(child=serializers.FloatField(), read_only=True)
    retrieved = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = Turn
        fields = ["t", "speaker", "text", "interrupted", "unspoken", "latency_ms", "retrieved", "created"]
        read_only_fields = fields


class CallSerializer(serializers.ModelSerializer):
    class Meta:
        model = Call
        fields = [
            "call_id", "caller", "callee", "state", "conversation_state", "ai_handled", "answered_by",
            "started", "answered", "ended", "duration_s", "billsec", "dial_status", "hangup_by",
            "termination_reason", "codec", "hitl_status", "notes", "follow_up", "callback_number", "updated",
        ]  # fmt: skip
        read_only_fields = fields


class TransferSerializer(serializers.ModelSerializer):
    operator = serializers.CharField(source="operator.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Transfer
        fields = [
            "transfer_id",
            "mode",
            "operator",
            "operator_ext",
            "status",
            "reason",
            "created",
            "connected",
            "ended",
        ]
        read_only_fields = fields


class CallDetailSerializer(CallSerializer):
    turns = TurnSerializer(many=True, read_only=True, help_text="In time order (Turn.Meta.ordering).")
    transfers = TransferSerializer(
        many=True, read_only=True, help_text="Put through to or listened in on from operators' phones, newest first."
    )

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "turns", "transfers"]
        read_only_fields = fields


class CallUpdateSerializer(StrictMixin, serializers.ModelSerializer):
    """What an operator may change on a call: notes, follow-up, callback number, HITL status."""

    class Meta:
        model = Call
        fields = ["notes", "follow_up", "callback_number", "hitl_status"]

    def validate_callback_number(self, value: str) -> str:
        number = value.strip()
        if number and not _PHONE.fullmatch(number):
            raise serializers.ValidationError("Enter a phone number (digits, spaces, +, -, parentheses).")
        return number


class CallFilterSerializer(serializers.Serializer):
    """Query parameters of the call list."""

    date_from = serializers.DateField(required=False, help_text="Calls started on or after this day (local time).")
    date_to = serializers.DateField(required=False, help_text="Calls started on or before this day (local time).")
    extension = serializers.CharField(required=False, max_length=16, help_text="The extension called.")
    ai = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: handled by the AI; false: not."
    )
    hitl = serializers.ChoiceField(
        required=False, choices=[v for v in HitlStatus.values if v], help_text="HITL status."
    )
    q = serializers.CharField(required=False, max_length=64, help_text="Part of the caller's number.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        return attrs


# --- knowledge -----------------------------------------------------------------------------------


class KnowledgeVersionSerializer(serializers.ModelSerializer):
    edited_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = KnowledgeVersion
        fields = ["version", "text", "category", "keywords", "edited_by", "created"]
        read_only_fields = fields


class KnowledgeItemSerializer(serializers.ModelSerializer):
    keywords = serializers.ListField(child=serializers.CharField(), read_only=True)
    source_span = serializers.DictField(child=serializers.FloatField(), allow_null=True, read_only=True)

    class Meta:
        model = KnowledgeItem
        fields = [
            "id", "owner", "text", "question", "heading", "category", "keywords", "source", "source_call_id",
            "source_speaker",
            "source_span", "confidence", "status", "usage_count", "version", "created", "updated",
        ]  # fmt: skip
        read_only_fields = fields


class KnowledgeItemDetailSerializer(KnowledgeItemSerializer):
    versions = KnowledgeVersionSerializer(many=True, read_only=True)

    class Meta(KnowledgeItemSerializer.Meta):
        fields = [*KnowledgeItemSerializer.Meta.fields, "versions"]
        read_only_fields = fields


def _keywords_field() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=50, required=False)


class KnowledgeItemCreateSerializer(StrictMixin, serializers.Serializer):
    """A new fact for one of the user's extensions (stored through ``do_add_item``)."""

    owner = serializers.CharField(max_length=16, help_text="Extension number, one of yours.")
    text = serializers.CharField(max_length=20000)
    category = serializers.ChoiceField(choices=Category.choices, default=Category.INFO)
    keywords = _keywords_field()
    status = serializers.ChoiceField(
        choices=NEW_ITEM_STATUSES,
        default=Status.APPROVED,
        help_text="A fact typed in by a person is approved unless sent to review.",
    )

    def validate_owner(self, value: str) -> str:
        user = self.context["request"].user
        owner = value.strip()
        if not access.extensions_for(user).filter(number=owner).exists():
            raise serializers.ValidationError("Not one of your extensions.")
        return owner


class KnowledgeItemUpdateSerializer(StrictMixin, serializers.Serializer):
    """A new version of an item: its text, category or keywords (owner and status stay)."""

    text = serializers.CharField(max_length=20000)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    keywords = _keywords_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Nothing to change."]})
        return attrs


class KnowledgeAddResultSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: the text merged into an existing near-duplicate item.")
    item = KnowledgeItemSerializer()


class KnowledgeFilterSerializer(serializers.Serializer):
    """Query parameters of the knowledge list."""

    owner = serializers.CharField(required=False, max_length=16)
    category = serializers.ChoiceField(required=False, choices=Category.choices)
    status = serializers.ChoiceField(required=False, choices=Status.choices)
    source = serializers.ChoiceField(required=False, choices=Source.choices)
    q = serializers.CharField(required=False, max_length=200, help_text="Words in the item's text.")


class KnowledgeSearchQuerySerializer(serializers.Serializer):
    owner = serializers.CharField(max_length=16, help_text="Extension number whose knowledge to search.")
    q = serializers.CharField(max_length=1000, help_text="The question, as a caller would ask it.")


class PassageSerializer(serializers.Serializer):
    item_id = serializers.IntegerField(allow_null=True)
    text = serializers.CharField()
    score = serializers.FloatField(help_text="Cosine similarity to the question.")
    relevant = serializers.BooleanField(help_text="score reaches the threshold.")
    category = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)


class KnowledgeSearchResultSerializer(serializers.Serializer):
    owner = serializers.CharField()
    q = serializers.CharField()
    passages = PassageSerializer(many=True)
    confidence = serializers.FloatField()
    above_threshold = serializers.BooleanField(help_text="True: the knowledge base covers the question.")
    threshold = serializers.FloatField()
    elapsed_s = serializers.FloatField()


# --- people and extensions -----------------------------------------------------------------------


class ExtensionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Extension
        fields = ["number", "name"]
        read_only_fields = fields


class OperatorSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    extensions = serializers.SlugRelatedField(slug_field="number", many=True, read_only=True)
    presence = serializers.SerializerMethodField(
        help_text="What HITL reads: the chosen status while a console page (or this API) was seen within "
        "AIPBX_PRESENCE_TIMEOUT_S, else offline."
    )

    class Meta:
        model = Operator
        fields = ["id", "username", "role", "status", "status_changed", "presence", "last_seen", "extensions"]
        read_only_fields = fields

    def get_presence(self, operator: Operator) -> str:
        return presence.effective(operator)


class PresenceSerializer(StrictMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=Presence.choices)


# --- human in the loop ---------------------------------------------------------------------------


class HitlRequestSerializer(serializers.ModelSerializer):
    call_id = serializers.CharField(source="call.call_id", read_only=True)
    caller = serializers.CharField(source="call.caller", read_only=True)
    callee = serializers.CharField(source="call.callee", read_only=True)
    claimed_by = serializers.CharField(source="claimed_by.username", read_only=True, allow_null=True, default=None)
    retrieved = serializers.ListField(child=serializers.DictField(), read_only=True)
    recent_turns = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = HitlRequest
        fields = [
            "request_id", "call_id", "caller", "callee", "question", "reason", "detail", "confidence",
            "retrieved", "recent_turns", "language", "status", "claimed_by", "claimed_at", "answer_raw",
            "answer_text", "answered_at", "delivered_at", "saved_item", "note", "created",
        ]  # fmt: skip
        read_only_fields = fields


class HitlFilterSerializer(serializers.Serializer):
    status = serializers.CharField(
        required=False,
        help_text="waiting, claimed, answered, delivered, timed_out, cancelled, away; or open (waiting and claimed).",
    )


class HitlAnswerSerializer(StrictMixin, serializers.Serializer):
    text = serializers.CharField(max_length=500, help_text="Short and factual; the AI turns it into a sentence.")
    save_to_knowledge = serializers.BooleanField(required=False, default=False)
