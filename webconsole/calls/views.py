"""Console pages for calls: dashboard, call history, call detail with recordings, operator presence.

Every page needs a login; objects outside the user's extensions answer 404 (``access``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from aipbx import sealing
from webconsole.calls import access, actions, callbacks, presence, transfers
from webconsole.calls.models import (
    LISTEN_TAKEABLE,
    TRANSFER_ACTIVE,
    Call,
    CallState,
    HitlStatus,
    Operator,
    Presence,
    Role,
    Transfer,
)

log = logging.getLogger(__name__)
RECORDINGS = ("mixed", "caller", "callee")
_SAFE_ID = re.compile(r"^[\w.-]{1,128}$")


def operator_for(user) -> Operator:
    """The user's operator profile, created on first use (superusers become admins)."""
    operator, _ = Operator.objects.get_or_create(
        user=user, defaults={"role": Role.ADMIN if user.is_superuser else Role.OPERATOR}
    )
    return operator


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    calls = access.calls_for(request.user)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    todays = calls.filter(started__gte=today)
    numbers = todays.aggregate(
        total=Count("id"),
        ai=Count("id", filter=Q(ai_handled=True)),
        answered=Count("id", filter=Q(answered__isnull=False)),
        avg_duration=Avg("duration_s"),
    )
    return render(
        request,
        "console/dashboard.html",
        {
            "active": calls.exclude(state=CallState.ENDED).order_by("started"),
            "today": numbers,
            "unresolved": calls.filter(hitl_status=HitlStatus.UNRESOLVED).count(),
            "hitl_waiting": _hitl_waiting(request.user),
        },
    )


def _hitl_waiting(user) -> int:
    try:
        from webconsole.hitl.queries import waiting_count  # the HITL app, when installed
    except ImportError:
        return 0
    return waiting_count(user)


class CallFilter(forms.Form):
    date_from = forms.DateField(
        required=False, label=gettext_lazy("Date from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=gettext_lazy("Date to"), widget=forms.DateInput(attrs={"type": "date"})
    )
    extension = forms.CharField(required=False, max_length=16)
    ai = forms.ChoiceField(
        required=False,
        label=gettext_lazy("AI"),
        choices=[("", gettext_lazy("All")), ("yes", gettext_lazy("AI-handled")), ("no", gettext_lazy("Not AI"))],
    )
    hitl = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("All")), *[(v, lbl) for v, lbl in HitlStatus.choices if v]]
    )
    q = forms.CharField(required=False, max_length=64, label=gettext_lazy("Caller"))


@login_required
@require_GET
def call_list(request: HttpRequest) -> HttpResponse:
    form = CallFilter(request.GET or None)
    calls = access.calls_for(request.user)
    if form.is_valid():
        data = form.cleaned_data
        tz = timezone.get_current_timezone()
        if data["date_from"]:
            calls = calls.filter(started__gte=datetime.combine(data["date_from"], time.min, tz))
        if data["date_to"]:
            calls = calls.filter(started__lt=datetime.combine(data["date_to"] + timedelta(days=1), time.min, tz))
        if data["extension"]:
            calls = calls.filter(callee=data["extension"])
        if data["ai"]:
            calls = calls.filter(ai_handled=data["ai"] == "yes")
        if data["hitl"]:
            calls = calls.filter(hitl_status=data["hitl"])
        if data["q"]:
            calls = calls.filter(caller__icontains=data["q"])
    if _has_voicemail_app():
        calls = calls.select_related("voicemail")  # the list marks calls with a message
    page = Paginator(calls.order_by("-started", "-id"), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/call_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "extensions": access.extensions_for(request.user),
        },
    )


class CallNotesForm(forms.ModelForm):
    class Meta:
        model = Call
        fields = ["notes", "follow_up", "callback_number", "hitl_status"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}
        # Here, not as the model's verbose names: those would be a migration for every wording change.
        labels = {
            "notes": gettext_lazy("Notes"),
            "follow_up": gettext_lazy("Follow up"),
            "callback_number": gettext_lazy("Call-back number"),
            "hitl_status": gettext_lazy("HITL status"),
        }

    def clean_callback_number(self) -> str:
        number = self.cleaned_data["callback_number"].strip()
        if number and not re.fullmatch(r"\+?[0-9 ()-]{2,31}", number):
            raise forms.ValidationError(gettext("Enter a phone number (digits, spaces, +, -, parentheses)."))
        return number


def _visible_call(request: HttpRequest, call_id: str) -> Call:
    return get_object_or_404(access.calls_for(request.user), call_id=call_id)


@login_required
def call_detail(request: HttpRequest, call_id: str) -> HttpResponse:
    call = _visible_call(request, call_id)
    if request.method == "POST":
        form = CallNotesForm(request.POST, instance=call)
        if form.is_valid():
            form.save()
            _sync_voicemail(call, request.user)
            messages.success(request, gettext("Call updated."))
            return redirect("console:call", call_id=call.call_id)
    elif request.method == "GET":
        form = CallNotesForm(instance=call)
    else:
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    turns = list(call.turns.order_by("t", "id"))
    return render(
        request,
        "console/call_detail.html",
        {
            "call": call,
            "turns": turns,
            "form": form,
            "recordings": [name for name in RECORDINGS if _recording(call, name) is not None],
            "metadata": _metadata(call),
            **_learning(call),
            **_follow_up(call),
        },
    )


def _follow_up(call: Call) -> dict:
    """The call's voicemail, the call-back it is (with its progress), and the call-backs made of it."""
    from webconsole.calls.models import Callback

    callback = Callback.objects.filter(call=call).first()
    transfer = call.transfers.select_related("operator").first()
    return {
        "transfer": transfer,
        "transfer_active": [str(status) for status in TRANSFER_ACTIVE],
        "listen_takeable": [str(status) for status in LISTEN_TAKEABLE],
        "transfer_failure": transfers.failure_text(transfer.reason) if transfer and transfer.reason else "",
        "voicemail": getattr(call, "voicemail", None) if _has_voicemail_app() else None,
        "callback": callback,
        "callback_failure": callbacks.failure_text(callback.reason) if callback and callback.reason else "",
        "callbacks_made": list(call.callbacks.order_by("-started", "-id")),
        "callback_to": callbacks.callback_number(call),
    }


def _has_voicemail_app() -> bool:
    from django.apps import apps

    return apps.is_installed("webconsole.voicemail")


def _sync_voicemail(call: Call, user) -> None:
    if _has_voicemail_app():
        from webconsole.voicemail.actions import do_sync_with_call  # the voicemail app reads calls

        do_sync_with_call(call, user)


@login_required
@require_POST
def call_back(request: HttpRequest, call_id: str) -> HttpResponse:
    """Ring the operator's phone, then the caller of ``call_id`` (see ``webconsole.calls.callbacks``)."""
    call = _visible_call(request, call_id)
    try:
        callback = callbacks.do_request_callback(request.user, call)
    except callbacks.CallbackError as exc:
        messages.error(request, str(exc))
        target = request.POST.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            return redirect("console:call", call_id=call.call_id)
        return redirect(target)
    messages.success(
        request,
        gettext("Calling back %(number)s: your phone (%(extension)s) rings first; answer it.")
        % {"number": callback.number, "extension": callback.operator_ext},
    )
    return redirect("console:call", call_id=callback.call.call_id)


def _transfer_action(
    request: HttpRequest,
    call_id: str,
    action: Callable[[Any, Call], Transfer],
    success: Callable[[Transfer], str],
) -> HttpResponse:
    """Run one of ``webconsole.calls.transfers``' actions on the call and say how it went; back to the
    page the operator came from (``next``, a local path) or the call's page."""
    call = _visible_call(request, call_id)
    target = request.POST.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = ""
    try:
        transfer = action(request.user, call)
    except transfers.TransferError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success(transfer))
    return redirect(target) if target else redirect("console:call", call_id=call.call_id)


@login_required
@require_POST
def take_call(request: HttpRequest, call_id: str) -> HttpResponse:
    """Put the AI call ``call_id`` through to the operator's own phone (``webconsole.calls.transfers``)."""
    return _transfer_action(
        request,
        call_id,
        transfers.do_request_transfer,
        lambda transfer: (
            gettext("Your phone (%(extension)s) rings: answer it, hear the briefing, then you have the caller.")
            % {"extension": transfer.operator_ext}
        ),
    )


@login_required
@require_POST
def listen_call(request: HttpRequest, call_id: str) -> HttpResponse:
    """Ring the operator's own phone to hear the AI call ``call_id``, unheard."""
    return _transfer_action(
        request,
        call_id,
        transfers.do_request_listen,
        lambda transfer: (
            gettext("Your phone (%(extension)s) rings: answer it to hear the call. Nobody hears you.")
            % {"extension": transfer.operator_ext}
        ),
    )


@login_required
@require_POST
def take_over(request: HttpRequest, call_id: str) -> HttpResponse:
    """The operator listening in on ``call_id`` takes the caller from the AI."""
    return _transfer_action(
        request, call_id, transfers.do_take_over, lambda transfer: gettext("You have the caller: the AI is silent.")
    )


def _learning(call: Call) -> dict:
    """What the owner's knowledge learned from this call, and what the caller left as notes."""
    from knowledge.models import ExtractionRun, KnowledgeItem, Source  # the knowledge app reads calls, not the reverse

    run = ExtractionRun.objects.filter(call_id=call.call_id).first()
    learned = list(KnowledgeItem.objects.filter(source=Source.CALL, source_call_id=call.call_id).order_by("pk"))
    return {
        "run": run,
        "learned": learned,
        "notes": run.notes if run else [],
        "excluded": run is not None and run.status == ExtractionRun.RunStatus.EXCLUDED,
    }


def _call_dir(call: Call) -> Path | None:
    if not _SAFE_ID.fullmatch(call.call_id):
        return None
    root = Path(settings.AIPBX_RECORDINGS_DIR).resolve()
    folder = (root / call.call_id).resolve()
    return folder if folder.parent == root else None


def _recording(call: Call, name: str) -> Path | None:
    """The call's directory if it holds ``<name>.wav`` (sealed or, from before encryption, clear)."""
    folder = _call_dir(call)
    if folder is None or name not in RECORDINGS:
        return None
    return folder if sealing.exists(folder, f"{name}.wav") else None


def _metadata(call: Call) -> dict:
    folder = _call_dir(call)
    if folder is None:
        return {}
    try:
        data = json.loads(sealing.read_text(folder, "metadata.json", settings.AIPBX_RECORDINGS_KEYRING))
    except (OSError, ValueError, sealing.SealError):
        return {}
    return {k: v for k, v in data.items() if k != "turns"} if isinstance(data, dict) else {}


@login_required
@require_GET
def call_audio(request: HttpRequest, call_id: str, name: str) -> HttpResponse:
    call = _visible_call(request, call_id)
    folder = _recording(call, name)
    if folder is None:
        raise Http404("No such recording")
    # Decrypted chunk by chunk as it is sent; Content-Length is the plaintext length (the file is seekable).
    try:
        audio = sealing.open_recording(folder, f"{name}.wav", settings.AIPBX_RECORDINGS_KEYRING)
    except sealing.MisplacedError as exc:  # another call's file put here: never play it as this call's
        log.error("recording %s/%s.wav belongs elsewhere: %s", call.call_id, name, exc)
        return HttpResponse(
            "This recording file belongs to another call or track (it was moved or swapped "
            "on disk) and is not played (see the server log).",
            status=500,
            content_type="text/plain",
        )
    except sealing.SealError as exc:  # a missing master key or a damaged file: the operator must know
        log.error("recording %s/%s.wav cannot be opened: %s", call.call_id, name, exc)
        return HttpResponse(
            "This recording cannot be decrypted (see the server log).", status=500, content_type="text/plain"
        )
    response = FileResponse(audio, content_type="audio/wav")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def set_presence(request: HttpRequest) -> HttpResponse:
    status = request.POST.get("status", "")
    if status not in Presence.values:
        messages.error(request, gettext("Unknown status %(status)r.") % {"status": status})
    else:
        operator = operator_for(request.user)
        actions.do_set_presence(operator, status)
        messages.success(
            request, gettext("You are now %(status)s.") % {"status": operator.get_status_display().lower()}
        )
    target = request.POST.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = "console:dashboard"
    return redirect(target)


@login_required
@require_GET
def operators(request: HttpRequest) -> HttpResponse:
    me = operator_for(request.user)
    rows = Operator.objects.select_related("user").prefetch_related("extensions").order_by("user__username")
    if not access.is_admin(request.user):
        mine = me.extensions.all()
        rows = rows.filter(Q(pk=me.pk) | Q(extensions__in=mine)).distinct()
    now = timezone.now()
    listed = list(rows)
    for op in listed:  # what HITL reads, not only what they chose
        op.presence = presence.effective(op, now)
        op.presence_label = Presence(op.presence).label
    return render(
        request,
        "console/operators.html",
        {"operators": listed, "me": me, "presence_timeout_s": round(settings.AIPBX_PRESENCE_TIMEOUT_S)},
    )
