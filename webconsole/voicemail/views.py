"""The voicemail inbox: the messages of my extensions, their transcripts and audio, call back, mark handled.

Every page needs a login; a message of an extension outside the user's answers 404 (``access``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from aipbx import sealing
from webconsole.calls import access
from webconsole.calls.actions import call_folder
from webconsole.voicemail import actions
from webconsole.voicemail.models import Voicemail

log = logging.getLogger(__name__)


def visible_voicemails(user) -> QuerySet[Voicemail]:
    """The messages of the extensions ``user`` may see."""
    return access.filter_by_owner(Voicemail.objects.select_related("call", "handled_by"), user, "callee")


def _visible(request: HttpRequest, voicemail_id: int) -> Voicemail:
    return get_object_or_404(visible_voicemails(request.user), pk=voicemail_id)


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    rows = visible_voicemails(request.user)
    show = request.GET.get("show", "new")
    if show == "new":
        rows = rows.filter(handled=False)
    extension = request.GET.get("extension", "")
    if extension:
        rows = rows.filter(callee=extension)
    page = Paginator(rows.prefetch_related("call__callbacks__callback"), 30).get_page(request.GET.get("page"))
    return render(
        request,
        "voicemail/inbox.html",
        {"page": page, "show": show, "extension": extension, "extensions": access.extensions_for(request.user)},
    )


@login_required
@require_GET
def audio(request: HttpRequest, voicemail_id: int) -> HttpResponse:
    voicemail = _visible(request, voicemail_id)
    folder = call_folder(voicemail.call.call_id)
    if not voicemail.file.endswith(".wav") or "/" in voicemail.file or not sealing.exists(folder, voicemail.file):
        raise Http404("No such message")
    try:
        handle = sealing.open_recording(folder, voicemail.file, settings.AIPBX_RECORDINGS_KEYRING)
    except sealing.SealError as exc:  # a missing master key, a damaged or misplaced file: never played
        log.error("voicemail %s cannot be opened: %s", voicemail.pk, exc)
        return HttpResponse(gettext("This message cannot be decrypted (see the server log)."), status=500)
    response = FileResponse(handle, content_type="audio/wav")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def handled(request: HttpRequest, voicemail_id: int) -> HttpResponse:
    voicemail = _visible(request, voicemail_id)
    done = request.POST.get("handled", "1") == "1"
    actions.do_mark_handled(voicemail.pk, request.user, done)
    messages.success(request, gettext("Marked as handled.") if done else gettext("Marked as not handled."))
    target = request.POST.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        return redirect("voicemail:inbox")
    return redirect(target)
