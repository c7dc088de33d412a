"""Forms of the console's knowledge manager.

Every form that names an owner is built for one user and offers only the
extensions that user may see (``webconsole.calls.access``), so a posted owner
outside them is an invalid choice, never a silent write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext, gettext_lazy, ngettext

from knowledge.importing import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from knowledge.models import Category, KnowledgeItem, Source, Status

MAX_UPLOAD_FILES = 20


def split_keywords(raw: str) -> list[str]:
    """``"parking, B2 ,, lobby"`` -> ``["parking", "B2", "lobby"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(word.strip() for word in raw.split(",") if word.strip()))


def _owner_choices(owners: list[str], blank: str | None) -> list[tuple[str, str]]:
    choices = [(number, number) for number in owners]
    return [("", blank), *choices] if blank is not None else choices


class ItemFilterForm(forms.Form):
    """The list's filters (GET); every field is optional."""

    q = forms.CharField(required=False, max_length=200, label=gettext_lazy("Text"))
    owner = forms.ChoiceField(required=False, label=gettext_lazy("Owner"))
    category = forms.ChoiceField(
        required=False, label=gettext_lazy("Category"), choices=[("", gettext_lazy("All")), *Category.choices]
    )
    status = forms.ChoiceField(
        required=False, label=gettext_lazy("Status"), choices=[("", gettext_lazy("All")), *Status.choices]
    )
    source = forms.ChoiceField(
        required=False, label=gettext_lazy("Source"), choices=[("", gettext_lazy("All")), *Source.choices]
    )

    def __init__(self, *args: Any, owners: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = _owner_choices(owners, gettext("All"))


class AskForm(forms.Form):
    """A question as a caller would ask it, run through one owner's retriever."""

    ask = forms.CharField(max_length=500, label=gettext_lazy("Ask as a caller would"))
    ask_owner = forms.ChoiceField(label=gettext_lazy("Owner"))

    def __init__(self, *args: Any, owners: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["ask_owner"].choices = _owner_choices(owners, None)


class ItemForm(forms.Form):
    """Add (with ``owners``) or edit (``owners=None``: an item never changes owner) an item."""

    owner = forms.ChoiceField(label=gettext_lazy("Owner"))
    question = forms.CharField(
        required=False,
        max_length=1000,
        label=gettext_lazy("Question it answers"),
        help_text=gettext_lazy("Optional: how a caller might ask (searched, never spoken)."),
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=20_000,
        label=gettext_lazy("Text"),
        help_text=gettext_lazy("What the assistant may tell callers."),
    )
    category = forms.ChoiceField(label=gettext_lazy("Category"), choices=Category.choices, initial=Category.INFO)
    keywords = forms.CharField(
        required=False, max_length=1000, label=gettext_lazy("Keywords"), help_text=gettext_lazy("Comma-separated.")
    )

    def __init__(self, *args: Any, owners: list[str] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if owners is None:
            del self.fields["owner"]
        else:
            self.fields["owner"].choices = _owner_choices(owners, None)

    @classmethod
    def for_item(cls, item: KnowledgeItem, data: Any = None) -> ItemForm:
        initial = {
            "text": item.text,
            "question": item.question,
            "category": item.category,
            "keywords": ", ".join(item.keywords),
        }
        return cls(data, owners=None, initial=initial)

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError(gettext("Enter the text the assistant may tell callers."))
        return text

    def clean_question(self) -> str:
        return " ".join(self.cleaned_data["question"].split())

    def clean_keywords(self) -> list[str]:
        return split_keywords(self.cleaned_data["keywords"])


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files (Django's documented pattern)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(SUPPORTED_SUFFIXES)}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class ImportForm(forms.Form):
    """Files to import for one owner; their content is checked by the import job itself."""

    owner = forms.ChoiceField(label=gettext_lazy("Owner"))
    files = MultipleFileField(
        label=gettext_lazy("Files"),
        help_text=gettext_lazy(
            "Plain text or Markdown (one item per paragraph), or CSV with 'question' and 'answer' columns."
        ),
    )

    def __init__(self, *args: Any, owners: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = _owner_choices(owners, None)

    def clean_files(self) -> list[UploadedFile]:
        files = self.cleaned_data["files"]
        if len(files) > MAX_UPLOAD_FILES:
            raise forms.ValidationError(gettext("At most %(n)d files per upload.") % {"n": MAX_UPLOAD_FILES})
        errors = []
        for upload in files:
            suffix = Path(upload.name or "").suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                errors.append(
                    gettext("%(name)s: unsupported file type %(suffix)s; use one of %(supported)s.")
                    % {
                        "name": upload.name,
                        "suffix": suffix or gettext("(none)"),
                        "supported": ", ".join(SUPPORTED_SUFFIXES),
                    }
                )
            elif upload.size is not None and upload.size > MAX_FILE_BYTES:
                errors.append(
                    ngettext(
                        "%(name)s: %(size)d byte is over the %(limit)d-byte limit.",
                        "%(name)s: %(size)d bytes is over the %(limit)d-byte limit.",
                        upload.size,
                    )
                    % {"name": upload.name, "size": upload.size, "limit": MAX_FILE_BYTES}
                )
        if errors:
            raise forms.ValidationError(errors)
        return files


class LearningPolicyForm(forms.Form):
    """How an owner's AI learns from the owner's calls."""

    learning = forms.BooleanField(required=False, label=gettext_lazy("Learn from my calls"))
    auto_publish = forms.BooleanField(required=False, label=gettext_lazy("Publish sure facts at once"))
    publish_threshold = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        label=gettext_lazy("Sure from confidence"),
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
