"""Knowledge-base tables. PostgreSQL is the source of truth; the vector store is an index.

Only ``approved`` items are in the vector index (see ``actions.py``); pending
and rejected items live here only. Every text edit keeps the previous text in
a :class:`KnowledgeVersion` row. :class:`ExtractionRun` is the idempotency key
of the per-call extraction task; :class:`ImportJob` records the progress of a
file import so the console can show it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy


class Category(models.TextChoices):
    APPOINTMENT = "appointment", gettext_lazy("Appointment")
    INFO = "info", gettext_lazy("Information")
    INSTRUCTION = "instruction", gettext_lazy("Instruction")
    OTHER = "other", gettext_lazy("Other")


class Source(models.TextChoices):
    CALL = "call", gettext_lazy("Call")
    MANUAL = "manual", gettext_lazy("Manual")
    IMPORT = "import", gettext_lazy("Import")
    HITL = "hitl", gettext_lazy("Human in the loop")


class Status(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending review")
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")


class KnowledgeItem(models.Model):
    """One fact an owner's AI assistant may tell callers (once approved)."""

    owner = models.CharField(max_length=16, help_text="Extension number of the callee, e.g. 1002.")
    text = models.TextField(help_text="What the AI may say to a caller (an imported FAQ's answer).")
    # Searchable context that is never spoken: an imported FAQ's question, or the heading a paragraph
    # sat under. A caller's question is matched against it as well as against the text.
    question = models.TextField(blank=True, default="", help_text="An imported FAQ's question (not spoken).")
    heading = models.CharField(
        max_length=200, blank=True, default="", help_text="The heading the text sat under in its document (not spoken)."
    )
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.INFO)
    keywords = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    source_call_id = models.CharField(max_length=128, blank=True, default="")
    source_speaker = models.CharField(max_length=16, blank=True, default="")
    source_span = models.JSONField(null=True, blank=True, help_text='{"start_s": .., "end_s": ..}')
    confidence = models.FloatField(default=1.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    usage_count = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    # Normalised text and the unit embedding (float32 bytes) serve near-duplicate detection.
    normalized = models.TextField(blank=True, default="", editable=False)
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "status"], name="knowledge_owner_status")]
        ordering = ["owner", "-created"]

    def __str__(self) -> str:
        return f"{self.owner}: {self.text[:60]}"


class KnowledgeVersion(models.Model):
    """The state of an item at one version (written on creation and on every edit)."""

    item = models.ForeignKey(KnowledgeItem, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    category = models.CharField(max_length=16, choices=Category.choices)
    keywords = models.JSONField(default=list, blank=True)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "version"], name="knowledge_version_unique")]
        ordering = ["item", "version"]

    def __str__(self) -> str:
        return f"item {self.item_id} v{self.version}"


class LearningPolicy(models.Model):
    """How an owner's AI learns from the owner's own calls (set in the console and in admin).

    Without a row the defaults apply: learning on, facts the judge is sure of (confidence at least
    ``publish_threshold``) published at once, the rest pending review. The PBX's recording mode
    (``recording`` in ``asterisk/extensions.yaml``) must also be ``learn`` for anything to be learned.
    """

    owner = models.CharField(max_length=16, unique=True, help_text="Extension number, e.g. 1002.")
    learning = models.BooleanField(default=True, help_text="Learn facts from what the owner says on calls.")
    auto_publish = models.BooleanField(default=True, help_text="Publish sure facts at once (else all wait for review).")
    publish_threshold = models.FloatField(default=0.8, help_text="Confidence from which a fact is published at once.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner"]
        verbose_name_plural = "learning policies"

    def __str__(self) -> str:
        return f"{self.owner}: {'learns' if self.learning else 'off'}"

    @classmethod
    def for_owner(cls, owner: str) -> LearningPolicy:
        """The owner's policy (an unsaved default when none was set)."""
        return cls.objects.filter(owner=owner).first() or cls(owner=owner)

    def status_for(self, confidence: float) -> str:
        """A new fact's status: approved (published) or pending review."""
        return Status.APPROVED if self.auto_publish and confidence >= self.publish_threshold else Status.PENDING


class ExtractionRun(models.Model):
    """One knowledge extraction per call: ``call_id`` is the idempotency key."""

    class RunStatus(models.TextChoices):
        RUNNING = "running", gettext_lazy("Running")
        DONE = "done", gettext_lazy("Done")
        SKIPPED = "skipped", gettext_lazy("Nothing useful")
        FAILED = "failed", gettext_lazy("Failed")
        EXCLUDED = "excluded", gettext_lazy("Excluded from learning")

    call_id = models.CharField(max_length=128, unique=True)
    owner = models.CharField(max_length=16, blank=True, default="")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    reason = models.TextField(blank=True, default="")
    items_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    #: What the caller left on an AI call (a message, a request): kept as notes, never as the owner's facts.
    notes = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.call_id}: {self.status}"


class ImportJob(models.Model):
    """Progress of one ``import_knowledge`` file, for the console."""

    class JobStatus(models.TextChoices):
        RUNNING = "running", gettext_lazy("Running")
        DONE = "done", gettext_lazy("Done")
        FAILED = "failed", gettext_lazy("Failed")

    owner = models.CharField(max_length=16)
    filename = models.CharField(max_length=512)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.RUNNING)
    error = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename} -> {self.owner} ({self.done}/{self.total})"
