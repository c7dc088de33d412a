"""The forms of the extension settings page: new extension, settings, hold music upload.

Each form's check runs the ARI app's own parser on the resulting row (``actions.check_extension``), so
what the console accepts is exactly what the ARI app will apply; a refused value is an error on the form
and nothing is saved.
"""

from __future__ import annotations

import hashlib
import secrets
import wave
from pathlib import Path

from django import forms
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from aipbx.directory import EXTENSION_RE, DirectoryError
from webconsole.calls import actions
from webconsole.calls.models import Extension

MAX_MUSIC_BYTES = 5 * 1024 * 1024
MAX_MUSIC_SECONDS = 600


class ExtensionForm(forms.ModelForm):
    class Meta:
        model = Extension
        fields = [
            "name",
            "business",
            "ai_enabled",
            "no_answer_timeout",
            "language",
            "greeting",
            "voice",
            "recording",
            "hold_message",
            "update_message",
            "hold_music_volume",
        ]
        labels = {
            "name": gettext_lazy("Owner"),
            "business": gettext_lazy("Business name"),
            "ai_enabled": gettext_lazy("AI answers missed calls"),
            "no_answer_timeout": gettext_lazy("No-answer timeout (s)"),
            "language": gettext_lazy("Language"),
            "greeting": gettext_lazy("Greeting"),
            "voice": gettext_lazy("Voice"),
            "recording": gettext_lazy("Recording"),
            "hold_message": gettext_lazy("Hold message"),
            "update_message": gettext_lazy("Update message"),
            "hold_music_volume": gettext_lazy("Hold music volume (%)"),
        }
        widgets = {"greeting": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        data = super().clean()
        if not self.errors:
            probe = Extension(**{**{f: getattr(self.instance, f) for f in ("number", "sip_password")}, **data})
            try:
                actions.check_extension(probe)
            except DirectoryError as exc:
                raise forms.ValidationError(str(exc).split(": ", 2)[-1]) from None
        return data


class AdminExtensionForm(forms.ModelForm):
    """The admin's form: the same check as the console's, so the admin cannot publish what the ARI app
    would refuse (a refused payload would hold back every later change until fixed)."""

    class Meta:
        model = Extension
        fields = "__all__"

    def clean(self):
        data = super().clean()
        if not self.errors:
            number = data.get("number") or self.instance.number
            if not EXTENSION_RE.match(number or ""):
                raise forms.ValidationError(gettext("2 to 6 digits, not starting with 0."))
            known = {f.name for f in Extension._meta.get_fields() if f.concrete and not f.primary_key}
            values = {k: v for k, v in data.items() if k in known}
            probe = Extension(**{"number": number, "sip_password": self.instance.sip_password or "x" * 24, **values})
            try:
                actions.check_extension(probe)
            except DirectoryError as exc:
                raise forms.ValidationError(str(exc).split(": ", 2)[-1]) from None
        return data


class NewExtensionForm(forms.Form):
    number = forms.CharField(label=gettext_lazy("Extension"), max_length=6)
    name = forms.CharField(label=gettext_lazy("Owner"), max_length=128)

    def clean_number(self) -> str:
        number = self.cleaned_data["number"].strip()
        if not EXTENSION_RE.match(number):
            raise forms.ValidationError(gettext("2 to 6 digits, not starting with 0."))
        if Extension.objects.filter(number=number).exists():
            raise forms.ValidationError(gettext("This extension exists already."))
        return number


def new_sip_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters of A-Z a-z 0-9 - _


class HoldMusicForm(forms.Form):
    music = forms.FileField(label=gettext_lazy("Hold music (WAV)"))

    def clean_music(self):
        upload = self.cleaned_data["music"]
        if upload.size > MAX_MUSIC_BYTES:
            raise forms.ValidationError(gettext("The file is larger than 5 MB."))
        if not upload.name.lower().endswith(".wav"):
            raise forms.ValidationError(gettext("Upload a WAV file."))
        try:
            upload.seek(0)
            with wave.open(upload, "rb") as wav:
                ok = wav.getsampwidth() == 2 and wav.getnchannels() in (1, 2) and 8000 <= wav.getframerate() <= 48000
                seconds = wav.getnframes() / wav.getframerate()
        except (wave.Error, EOFError, ValueError):
            raise forms.ValidationError(gettext("Upload a WAV file.")) from None
        if not ok:
            raise forms.ValidationError(gettext("The WAV file must be 16-bit PCM, mono or stereo, 8-48 kHz."))
        if seconds > MAX_MUSIC_SECONDS:
            raise forms.ValidationError(gettext("The music is longer than 10 minutes."))
        return upload

    def save(self, number: str) -> str:
        """Write the file into the hold music directory; returns its name there."""
        upload = self.cleaned_data["music"]
        upload.seek(0)
        data = upload.read()
        name = f"{number}-{hashlib.sha256(data).hexdigest()[:12]}.wav"
        folder = Path(settings.AIPBX_HOLD_MUSIC_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.chmod(0o644)  # the ARI app reads it (another user in a container)
        tmp.replace(target)
        return name
