"""Admin-only privacy pages: export or delete a data subject's data by phone number.

Anonymous users are sent to the login page; logged-in users who are not admins get 404 (the
page's existence does not leak, as elsewhere in the console). Both actions are POST + CSRF.
"""

from __future__ import annotations

import json
import tempfile
from functools import wraps
from pathlib import Path
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from webconsole.calls.access import is_admin
from webconsole.privacy import subject


class PhoneForm(forms.Form):
    phone = forms.CharField(
        max_length=32,
        label=gettext_lazy("Phone number"),
        help_text=gettext_lazy("Any spelling: 010-1234-5678, +82 10 …"),
    )


class DeleteForm(PhoneForm):
    confirm = forms.BooleanField(label=gettext_lazy("I understand this cannot be undone"))


def admin_only(view: Any) -> Any:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_admin(request.user):
            raise Http404("no such page")
        return view(request, *args, **kwargs)

    return wrapper


def _page(request: HttpRequest, status: int = 200, **context: Any) -> HttpResponse:
    context.setdefault("export_form", PhoneForm())
    context.setdefault("delete_form", DeleteForm())
    return render(request, "privacy/index.html", context, status=status)


@admin_only
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return _page(request)


@admin_only
@require_POST
def export_view(request: HttpRequest) -> HttpResponse:
    form = PhoneForm(request.POST)
    if not form.is_valid():
        return _page(request, 400, export_form=form)
    handle = tempfile.NamedTemporaryFile(suffix=".zip")  # noqa: SIM115 - closed by the response
    try:
        subject.export(form.cleaned_data["phone"], Path(handle.name))
    except subject.SubjectError as exc:
        handle.close()
        form.add_error("phone", str(exc))
        return _page(request, 400, export_form=form)
    number = subject.check_phone(form.cleaned_data["phone"])
    return FileResponse(
        open(handle.name, "rb"),
        as_attachment=True,  # noqa: SIM115
        filename=f"subject-{number}.zip",
        content_type="application/zip",
    )


@admin_only
@require_POST
def delete_view(request: HttpRequest) -> HttpResponse:
    form = DeleteForm(request.POST)
    if not form.is_valid():
        return _page(request, 400, delete_form=form)
    try:
        report = subject.delete(form.cleaned_data["phone"])
    except subject.SubjectError as exc:
        form.add_error("phone", str(exc))
        return _page(request, 400, delete_form=form)
    return _page(request, report=report, report_json=json.dumps(report, ensure_ascii=False, indent=2))
