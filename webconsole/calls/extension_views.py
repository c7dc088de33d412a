"""``/extensions/``: the PBX's extensions and their settings (admins edit, operators read theirs)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from webconsole.calls import access, actions
from webconsole.calls.extension_forms import ExtensionForm, HoldMusicForm, NewExtensionForm, new_sip_password
from webconsole.calls.models import Extension


@login_required
@require_http_methods(["GET", "POST"])
def extension_list(request: HttpRequest) -> HttpResponse:
    admin = access.is_admin(request.user)
    form = NewExtensionForm(request.POST or None)
    if request.method == "POST":
        if not admin:
            raise PermissionDenied
        if form.is_valid():
            row = Extension(number=form.cleaned_data["number"], sip_password=new_sip_password())
            actions.do_save_extension(request.user, row, {"name": form.cleaned_data["name"]}, created=True)
            messages.success(
                request, gettext("Extension %(number)s added: its phone can register now.") % {"number": row.number}
            )
            return redirect("console:extension", number=row.number)
    rows = access.extensions_for(request.user).filter(seeded=True)
    return render(request, "console/extensions.html", {"extensions": rows, "form": form, "admin": admin})


@login_required
@require_http_methods(["GET", "POST"])
def extension_detail(request: HttpRequest, number: str) -> HttpResponse:
    if not access.can_see_extension(request.user, number):
        raise PermissionDenied
    row = get_object_or_404(Extension, number=number)
    admin = access.is_admin(request.user)
    form = ExtensionForm(instance=row)
    music = HoldMusicForm()
    if request.method == "POST":
        if not admin:
            raise PermissionDenied
        if "music" in request.FILES or request.POST.get("action") == "music":
            music = HoldMusicForm(request.POST, request.FILES)
            if music.is_valid():
                actions.do_save_extension(request.user, row, {"hold_music": music.save(row.number)})
                messages.success(request, gettext("Hold music uploaded."))
                return redirect("console:extension", number=number)
        elif request.POST.get("action") == "no-music":
            actions.do_save_extension(request.user, row, {"hold_music": ""})
            return redirect("console:extension", number=number)
        else:
            form = ExtensionForm(request.POST, instance=Extension.objects.get(pk=row.pk))
            if form.is_valid():
                values = {f: form.cleaned_data[f] for f in form.Meta.fields}
                if actions.do_save_extension(request.user, row, values) is not None:
                    messages.success(request, gettext("Saved: the next call uses the new settings."))
                return redirect("console:extension", number=number)
    return render(
        request,
        "console/extension.html",
        {"ext": row, "form": form, "music": music, "admin": admin, "changes": row.changes.select_related("user")[:20]},
    )
