"""Calls as the console sees them, the events that built them, and the people who operate the system.

The ARI app owns the calls; it never touches this database. It publishes events to a Redis Stream and
``webconsole.calls.ingest`` applies them here, idempotently by ``event_id``. PostgreSQL is then the
source of truth of the console: a page load reads it, and live updates are sent only after the
transaction that stored them committed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy


class Extension(models.Model):
    """A phone extension, its owner and its settings: the source of truth of the PBX's directory.

    ``asterisk/extensions.yaml`` seeds a row once (``seeded``); from then on the console edits it, and
    every change is published to the ARI app and Asterisk (``webconsole.calls.directory``).
    """

    LANGUAGES = (("en-US", gettext_lazy("English (en-US)")), ("ko-KR", gettext_lazy("Korean (ko-KR)")))
    RECORDING = (
        ("learn", gettext_lazy("Record, transcribe and learn")),
        ("record", gettext_lazy("Record and transcribe")),
        ("off", gettext_lazy("Do not record")),
    )

    number = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=128, blank=True, default="")
    business = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text=gettext_lazy(
            "What callers call the business or desk behind this line, e.g. Smile Tree Dental Clinic. "
            "The AI does not take it for something a caller asks about."
        ),
    )
    ai_enabled = models.BooleanField(default=True, help_text=gettext_lazy("The AI answers the calls nobody picks up."))
    no_answer_timeout = models.PositiveSmallIntegerField(
        default=10, help_text=gettext_lazy("Seconds the phone rings before the AI answers (1-600).")
    )
    language = models.CharField(max_length=8, choices=LANGUAGES, default="en-US")
    greeting = models.TextField(
        blank=True,
        default="",
        help_text=gettext_lazy(
            "What the AI says first; {owner} and {business} (the business name, or the owner without one) "
            "are replaced. It must say the call is recorded."
        ),
    )
    voice = models.CharField(max_length=64, blank=True, default="")
    recording = models.CharField(max_length=8, choices=RECORDING, default="learn")
    hold_message = models.CharField(max_length=500, blank=True, default="")
    update_message = models.CharField(max_length=500, blank=True, default="")
    hold_music = models.CharField(max_length=104, blank=True, default="", help_text="A WAV file name.")
    hold_music_volume = models.PositiveSmallIntegerField(default=100)
    #: Only for extensions made in the console (the seed's passwords are in .env, rendered into pjsip.conf).
    sip_password = models.CharField(max_length=64, blank=True, default="")
    #: The seed's settings were copied into this row (the YAML is never read for it again).
    seeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}".strip()


class ExtensionChange(models.Model):
    """Who changed an extension's settings, when, and what (field -> [before, after])."""

    extension = models.ForeignKey(Extension, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.extension.number} {self.at:%Y-%m-%d %H:%M} {', '.join(self.changes)}"


class Role(models.TextChoices):
    OPERATOR = "operator", gettext_lazy("Operator")
    ADMIN = "admin", gettext_lazy("Admin")


class Presence(models.TextChoices):
    AVAILABLE = "available", gettext_lazy("Available")
    BUSY = "busy", gettext_lazy("Busy")
    AWAY = "away", gettext_lazy("Away")
    OFFLINE = "offline", gettext_lazy("Offline")


class Operator(models.Model):
    """A console user's role, the extensions they look after, and their presence (read by HITL).

    ``status`` is what the operator chose; it counts only while one of their console pages answers
    heartbeats (``last_seen``): see :mod:`webconsole.calls.presence`.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    extensions = models.ManyToManyField(Extension, blank=True, related_name="operators")
    status = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    status_changed = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(
        null=True, blank=True, help_text="The last heartbeat of one of the operator's console pages."
    )
    extension = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="The operator's own phone (an extension of this PBX): a call-back rings it first.",
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.role}, {self.status})"


class CallState(models.TextChoices):
    RINGING = "ringing", gettext_lazy("Ringing")
    ANSWERED = "answered", gettext_lazy("Answered by a person")
    AI = "ai", gettext_lazy("With the AI")
    ENDED = "ended", gettext_lazy("Ended")


class HitlStatus(models.TextChoices):
    NONE = "", gettext_lazy("None")
    UNRESOLVED = "unresolved", gettext_lazy("Unresolved")
    NOTED = "noted", gettext_lazy("Noted")
    RESOLVED = "resolved", gettext_lazy("Resolved")


class TranscriptSource(models.TextChoices):
    NONE = "", gettext_lazy("None")
    AI = "ai", gettext_lazy("The AI conversation")
    LIVE = "live", gettext_lazy("Live, during the call")
    QUEUED = "queued", gettext_lazy("Being transcribed after the call")
    POST_CALL = "post_call", gettext_lazy("After the call, from the recordings")
    FAILED = "failed", gettext_lazy("Transcription failed")


class Call(models.Model):
    call_id = models.CharField(max_length=128, unique=True)
    caller = models.CharField(max_length=64, blank=True, default="")
    callee = models.CharField(max_length=16, blank=True, default="", help_text="The extension called (its owner).")
    state = models.CharField(max_length=16, choices=CallState.choices, default=CallState.RINGING)
    conversation_state = models.CharField(max_length=24, blank=True, default="")
    ai_handled = models.BooleanField(default=False)
    answered_by = models.CharField(
        max_length=64, blank=True, default="", help_text='Who answered: "ai", a phone, or "ai,1002" after a transfer.'
    )
    started = models.DateTimeField(null=True, blank=True)
    answered = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    billsec = models.FloatField(null=True, blank=True)
    dial_status = models.CharField(max_length=32, blank=True, default="")
    hangup_by = models.CharField(max_length=16, blank=True, default="")
    termination_reason = models.CharField(max_length=64, blank=True, default="")
    codec = models.CharField(max_length=16, blank=True, default="")
    recording_dir = models.CharField(max_length=512, blank=True, default="")
    hitl_status = models.CharField(max_length=16, choices=HitlStatus.choices, blank=True, default=HitlStatus.NONE)
    notes = models.TextField(blank=True, default="")
    follow_up = models.BooleanField(default=False)
    callback_number = models.CharField(max_length=32, blank=True, default="")
    transcript_source = models.CharField(
        max_length=16,
        choices=TranscriptSource.choices,
        blank=True,
        default="",
        help_text="How the call's transcript was made.",
    )
    ai_confidence = models.FloatField(
        null=True, blank=True, help_text="The AI's confidence (0..1) that its knowledge answers the question."
    )
    ai_reply = models.TextField(blank=True, default="", help_text="The AI's current or last reply, as spoken so far.")
    ai_speaking = models.BooleanField(default=False, help_text="Whether the AI is saying ai_reply right now.")
    callback_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="callbacks",
        help_text="The earlier call this one calls back (an operator's click-to-call).",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started"]
        indexes = [
            models.Index(fields=["callee", "-started"], name="calls_callee_started"),
            models.Index(fields=["state"], name="calls_state"),
        ]

    def __str__(self) -> str:
        return f"{self.caller} -> {self.callee} ({self.call_id})"

    @property
    def active(self) -> bool:
        return self.state != CallState.ENDED


class CallbackStatus(models.TextChoices):
    REQUESTED = "requested", gettext_lazy("Requested")
    RINGING_OPERATOR = "ringing_operator", gettext_lazy("Ringing your phone")
    RINGING_CALLER = "ringing_caller", gettext_lazy("Ringing the caller")
    CONNECTED = "connected", gettext_lazy("Connected")
    ENDED = "ended", gettext_lazy("Ended")
    FAILED = "failed", gettext_lazy("Failed")


class Callback(models.Model):
    """An operator's click-to-call: their phone rang first, then the caller's (``ariapp.calls.callback``).

    ``call`` is the new call (its ``callback_of`` the earlier one); the status follows the ARI app's
    ``callback.status`` events, ``reason`` says why it failed.
    """

    callback_id = models.CharField(max_length=64, unique=True)
    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="callback")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="callbacks"
    )
    operator_ext = models.CharField(max_length=16)
    number = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=CallbackStatus.choices, default=CallbackStatus.REQUESTED)
    reason = models.CharField(max_length=32, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.callback_id}: {self.operator_ext} -> {self.number} ({self.status})"


class TransferStatus(models.TextChoices):
    REQUESTED = "requested", gettext_lazy("Requested")
    RINGING = "ringing", gettext_lazy("Ringing the operator's phone")
    BRIEFING = "briefing", gettext_lazy("Briefing the operator")
    LISTENING = "listening", gettext_lazy("Listening in")
    CONNECTED = "connected", gettext_lazy("Connected")
    ENDED = "ended", gettext_lazy("Ended")
    FAILED = "failed", gettext_lazy("Failed")


#: The transfer is under way: no second one for the same call.
TRANSFER_ACTIVE = (
    TransferStatus.REQUESTED,
    TransferStatus.RINGING,
    TransferStatus.BRIEFING,
    TransferStatus.LISTENING,
    TransferStatus.CONNECTED,
)
#: A listen in that can still be taken over (the ARI app takes over as soon as the operator listens).
LISTEN_TAKEABLE = (TransferStatus.REQUESTED, TransferStatus.RINGING, TransferStatus.LISTENING)


class TransferMode(models.TextChoices):
    TRANSFER = "transfer", gettext_lazy("Put through")
    LISTEN = "listen", gettext_lazy("Listen in")


class Transfer(models.Model):
    """An AI call put through to an operator's own phone, or listened in on from it (``ariapp.calls.transfer``).

    The caller stays on the same call (one CDR line); the status follows the ARI app's
    ``transfer.status`` events, ``reason`` says why it failed (the caller is then back with the AI).
    """

    transfer_id = models.CharField(max_length=64, unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="transfers")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="transfers"
    )
    operator_ext = models.CharField(max_length=16)
    mode = models.CharField(
        max_length=16,
        choices=TransferMode.choices,
        default=TransferMode.TRANSFER,
        help_text="Put through (briefing, then bridged) or listen in (heard by nobody, may take over).",
    )
    status = models.CharField(max_length=16, choices=TransferStatus.choices, default=TransferStatus.REQUESTED)
    reason = models.CharField(max_length=32, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    connected = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.transfer_id}: {self.call_id} -> {self.operator_ext} ({self.status})"


class CallEvent(models.Model):
    """One event from the ARI app, kept as it came; ``event_id`` makes a replay a no-op."""

    event_id = models.CharField(max_length=64, unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    ts = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["ts", "id"]
        indexes = [models.Index(fields=["call", "type"], name="calls_event_call_type")]

    def __str__(self) -> str:
        return f"{self.type} {self.call_id} {self.ts:%H:%M:%S}"


class Turn(models.Model):
    """One utterance: the caller's question or the AI's reply as it was played (AI calls), or what the
    caller or the callee said (phone-to-phone calls, transcribed live or after the call)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")
    event_id = models.CharField(max_length=64, unique=True)
    t = models.FloatField(help_text="Seconds since the call was answered (by the AI or a person).")
    end = models.FloatField(null=True, blank=True, help_text="End of the utterance, seconds since the answer.")
    speaker = models.CharField(max_length=16)
    text = models.TextField(blank=True, default="")
    confidence = models.FloatField(null=True, blank=True, help_text="The recogniser's confidence, 0..1.")
    interrupted = models.BooleanField(default=False)
    unspoken = models.TextField(blank=True, default="")
    latency_ms = models.JSONField(default=dict, blank=True)
    retrieved = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["call", "t", "id"]

    def __str__(self) -> str:
        return f"{self.speaker}@{self.t:.1f}: {self.text[:40]}"
