"""Help-request pages: the queue of my extensions and one request with its claim and answer forms.

Every page needs a login; a request of an extension outside the user's answers 404 (``access``).
Changes go through :mod:`webconsole.hitl.actions`; their refusals become messages on the page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from knowledge.retrieval.errors import RetrievalError
from webconsole.hitl import actions, queries
from webconsole.hitl.models import OPEN, HitlRequest

HISTORY = 30


class AnswerForm(forms.Form):
    text = forms.CharField(
        max_length=actions.MAX_ANSWER_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("Answer"),
        help_text=gettext_lazy("Short and factual; the AI turns it into a sentence."),
    )
    save_to_knowledge = forms.BooleanField(required=False, label=gettext_lazy("Save to knowledge (pending review)"))


def _visible(request: HttpRequest, request_id: str) -> HitlRequest:
    return get_object_or_404(queries.visible_requests(request.user), request_id=request_id)


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    rows = queries.visible_requests(request.user)
    return render(
        request,
        "hitl/queue.html",
        {
            "open": rows.filter(status__in=OPEN).order_by("created", "id"),
            "history": rows.exclude(status__in=OPEN).order_by("-created", "-id")[:HISTORY],
        },
    )


@login_required
@require_GET
def detail(request: HttpRequest, request_id: str) -> HttpResponse:
    item = _visible(request, request_id)
    return render(request, "hitl/detail.html", {"item": item, "form": AnswerForm()})


@login_required
@require_POST
def claim(request: HttpRequest, request_id: str) -> HttpResponse:
    item = _visible(request, request_id)
    try:
        actions.do_claim(item.request_id, request.user)
    except actions.HitlError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Claimed: the caller is waiting for your answer."))
    return redirect("hitl:detail", request_id=item.request_id)


@login_required
@require_POST
def answer(request: HttpRequest, request_id: str) -> HttpResponse:
    item = _visible(request, request_id)
    form = AnswerForm(request.POST)
    if not form.is_valid():
        return render(request, "hitl/detail.html", {"item": item, "form": form}, status=400)
    try:
        actions.do_answer(item.request_id, request.user, form.cleaned_data["text"])
    except actions.HitlError as exc:
        messages.error(request, str(exc))
        return redirect("hitl:detail", request_id=item.request_id)
    messages.success(request, gettext("Answer sent: the AI is telling the caller."))
    if form.cleaned_data["save_to_knowledge"]:
        try:
            actions.do_save_to_knowledge(item.request_id, request.user)
        except RetrievalError as exc:
            messages.warning(
                request, gettext("The answer was sent but not saved as knowledge: %(error)s") % {"error": exc}
            )
        else:
            messages.success(request, gettext("Saved to knowledge, pending review."))
    return redirect("hitl:detail", request_id=item.request_id)
