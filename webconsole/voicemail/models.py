"""A message a caller left after the tone, when nobody could answer their question.

The ARI app records it (``ariapp.calls.voicemail``), keeps it beside the call's recordings as
``voicemail.wav`` (sealed at rest) and publishes ``voicemail.recorded`` once the call is finished;
:mod:`webconsole.voicemail.ingest` stores it here. Its help request stays the call's unresolved item
until the message is handled (:func:`webconsole.voicemail.actions.do_mark_handled` resolves both).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from webconsole.calls.models import Call


class TranscriptStatus(models.TextChoices):
    DONE = "done", gettext_lazy("Transcribed")
    QUEUED = "queued", gettext_lazy("Being transcribed")
    FAILED = "failed", gettext_lazy("Could not be transcribed")


class Voicemail(models.Model):
    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="voicemail")
    hitl_request = models.ForeignKey(
        "hitl.HitlRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="voicemails"
    )
    callee = models.CharField(max_length=16, help_text="The extension the message is for.")
    caller = models.CharField(max_length=64, blank=True, default="")
    file = models.CharField(max_length=64, default="voicemail.wav", help_text="In the call's recordings folder.")
    t = models.FloatField(default=0.0, help_text="Where the message starts, seconds since the answer.")
    duration_s = models.FloatField(default=0.0)
    ended_by = models.CharField(max_length=16, blank=True, default="", help_text="hangup, max_length or silence.")
    reason = models.CharField(max_length=16, blank=True, default="", help_text="timeout or away.")
    language = models.CharField(max_length=16, blank=True, default="")
    transcript = models.TextField(blank=True, default="")
    transcript_status = models.CharField(max_length=16, choices=TranscriptStatus.choices, default=TranscriptStatus.DONE)
    created = models.DateTimeField(default=timezone.now)
    handled = models.BooleanField(default=False)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["callee", "handled", "-created"], name="voicemail_inbox")]

    def __str__(self) -> str:
        return f"{self.caller} -> {self.callee} ({self.duration_s:.0f} s)"
