"""Console pages of the knowledge manager: list and search, add / edit / delete, review, batch import.

Every page needs a login. Items and import jobs are filtered by owner through
``webconsole.calls.access``: an operator sees the extensions assigned to them,
and any object outside those answers 404, so its existence does not leak.
Changes go through ``knowledge.actions`` (history and vector index kept in step);
a file import is a Celery task (``import_knowledge_task``) queued after the commit
that created its :class:`~knowledge.models.ImportJob`, and the progress page polls
:func:`job_json`.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import get_valid_filename
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from knowledge.actions import (
    Text,
    do_add_item,
    do_delete_item,
    do_edit_item,
    do_exclude_call,
    do_set_learning_policy,
    do_set_status,
    get_retriever,
)
from knowledge.forms import AskForm, ImportForm, ItemFilterForm, ItemForm, LearningPolicyForm
from knowledge.importing import upload_dir
from knowledge.models import ImportJob, KnowledgeItem, LearningPolicy, Source, Status
from knowledge.retrieval import RetrievalError
from webconsole.calls import access
from webconsole.calls.models import Extension

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
#: Sources whose provenance is a moment of a call (the detail page links to it).
CALL_SOURCES = frozenset({Source.CALL, Source.HITL})


def _owners(user) -> list[str]:
    """The extension numbers ``user`` may pick as an owner (admins: every extension)."""
    allowed = access.visible_extensions(user)
    if allowed is access.ALL:
        return sorted(Extension.objects.values_list("number", flat=True))
    return sorted(allowed)


def _items(user) -> QuerySet[KnowledgeItem]:
    return access.filter_by_owner(KnowledgeItem.objects.all(), user, "owner")


def _visible_item(request: HttpRequest, item_id: int) -> KnowledgeItem:
    return get_object_or_404(_items(request.user), pk=item_id)


def _back(request: HttpRequest, default: str) -> str:
    """The ``next`` field when it is a path on this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    owners = _owners(user)
    if access.visible_extensions(user) is access.ALL:
        owners = sorted(set(owners) | set(KnowledgeItem.objects.values_list("owner", flat=True).distinct()))
    visible = _items(user)
    items = visible
    form = ItemFilterForm(request.GET or None, owners=owners)
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            items = items.filter(Q(text__icontains=data["q"]) | Q(keywords__icontains=data["q"]))
        for field in ("owner", "category", "status", "source"):
            if data[field]:
                items = items.filter(**{field: data[field]})
    page = Paginator(items.order_by("-updated", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    ask, answers, ask_error = _ask(request, owners)
    return render(
        request,
        "knowledge/item_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "pending": visible.filter(status=Status.PENDING).count(),
            "ask_form": ask,
            "answers": answers,
            "ask_error": ask_error,
        },
    )


def _ask(request: HttpRequest, owners: list[str]) -> tuple[AskForm, list[dict] | None, str]:
    """Run the "ask as a caller would" question, if one was asked: ``(form, answers, error)``."""
    if "ask" not in request.GET:
        return AskForm(owners=owners, initial={"ask_owner": request.GET.get("owner", "")}), None, ""
    form = AskForm(request.GET, owners=owners)
    if not form.is_valid():
        return form, None, ""
    owner = form.cleaned_data["ask_owner"]
    try:
        result = async_to_sync(get_retriever().search)(owner, form.cleaned_data["ask"])
    except RetrievalError as exc:
        logger.warning("knowledge search for %s failed: %s", owner, exc)
        return form, None, gettext("Search failed: %(error)s") % {"error": exc}
    ids = [int(p.id) for p in result.passages if p.id.isdigit()]
    items = _items(request.user).filter(owner=owner).in_bulk(ids)
    answers = [
        {"passage": p, "item": items.get(int(p.id)) if p.id.isdigit() else None, "above": p.score >= result.threshold}
        for p in result.passages
    ]
    return form, answers, ""


@login_required
@require_GET
def item_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _visible_item(request, item_id)
    span = item.source_span if isinstance(item.source_span, dict) else {}
    return render(
        request,
        "knowledge/item_detail.html",
        {
            "item": item,
            "versions": item.versions.select_related("edited_by").order_by("-version"),
            "call_link": item.source in CALL_SOURCES and bool(item.source_call_id),
            "start_s": span.get("start_s"),
            "end_s": span.get("end_s"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def item_add(request: HttpRequest) -> HttpResponse:
    owners = _owners(request.user)
    form = ItemForm(request.POST or None, owners=owners, initial={"owner": request.GET.get("owner", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Written by a person for this owner: approved at once, as an import is.
        results = do_add_item(
            data["owner"],
            Text(data["text"], question=data["question"]),
            category=data["category"],
            keywords=data["keywords"],
            source=Source.MANUAL,
            status=Status.APPROVED,
            edited_by=request.user,
        )
        created = sum(1 for r in results if r.created)
        if created == len(results):
            messages.success(
                request,
                ngettext(
                    "Added %(n)d item; the assistant can use it now.",
                    "Added %(n)d items; the assistant can use them now.",
                    created,
                )
                % {"n": created},
            )
        else:
            matched = len(results) - created
            messages.info(
                request,
                ngettext(
                    "Added %(n)d item(s); %(m)d part matched an existing item, which was approved instead.",
                    "Added %(n)d item(s); %(m)d parts matched existing items, which were approved instead.",
                    matched,
                )
                % {"n": created, "m": matched},
            )
        return redirect("knowledge:item", item_id=results[0].item.pk)
    return render(request, "knowledge/item_form.html", {"form": form, "item": None})


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _visible_item(request, item_id)
    form = ItemForm.for_item(item, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes = {
            "text": data["text"] if data["text"] != item.text else None,
            "question": data["question"] if data["question"] != item.question else None,
            "category": data["category"] if data["category"] != item.category else None,
            "keywords": data["keywords"] if data["keywords"] != item.keywords else None,
        }
        if any(value is not None for value in changes.values()):
            item = do_edit_item(item.pk, **changes, edited_by=request.user)
            messages.success(request, gettext("Saved as version %(version)d.") % {"version": item.version})
        else:
            messages.info(request, gettext("Nothing changed."))
        return redirect("knowledge:item", item_id=item.pk)
    return render(request, "knowledge/item_form.html", {"form": form, "item": item})


@login_required
@require_http_methods(["GET", "POST"])
def item_delete(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _visible_item(request, item_id)
    if request.method == "POST":
        do_delete_item(item.pk)
        messages.success(request, gettext("Deleted item %(id)d.") % {"id": item_id})
        return redirect("knowledge:list")
    return render(request, "knowledge/item_confirm_delete.html", {"item": item})


def _set_status(request: HttpRequest, item_id: int, status: str) -> HttpResponse:
    item = _visible_item(request, item_id)
    do_set_status(item.pk, status)
    if status == Status.APPROVED:
        messages.success(request, gettext("Approved item %(id)d.") % {"id": item.pk})
    else:
        messages.success(request, gettext("Rejected item %(id)d.") % {"id": item.pk})
    return redirect(_back(request, reverse("knowledge:item", args=[item.pk])))


@login_required
@require_POST
def item_approve(request: HttpRequest, item_id: int) -> HttpResponse:
    return _set_status(request, item_id, Status.APPROVED)


@login_required
@require_POST
def item_reject(request: HttpRequest, item_id: int) -> HttpResponse:
    return _set_status(request, item_id, Status.REJECTED)


@login_required
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportForm(
        request.POST or None,
        request.FILES or None,
        owners=_owners(request.user),
        initial={"owner": request.GET.get("owner", "")},
    )
    if request.method == "POST" and form.is_valid():
        owner = form.cleaned_data["owner"]
        with transaction.atomic():
            jobs = [
                ImportJob.objects.create(owner=owner, filename=str(_store(upload)))
                for upload in form.cleaned_data["files"]
            ]
            for job in jobs:
                transaction.on_commit(lambda job_id=job.pk: _queue_import(job_id))
        ids = ",".join(str(job.pk) for job in jobs)
        return redirect(f"{reverse('knowledge:imports')}?ids={ids}")
    return render(request, "knowledge/import_form.html", {"form": form})


def _store(upload: UploadedFile) -> Path:
    """Save an upload as ``<upload dir>/<random>/<its cleaned name>`` (the worker reads it from there)."""
    folder = upload_dir() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    name = get_valid_filename(Path(upload.name or "upload.txt").name) or "upload.txt"
    path = folder / name
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def _queue_import(job_id: int) -> None:
    from knowledge.tasks import import_knowledge_task

    try:
        import_knowledge_task.delay(job_id)
    except Exception as exc:  # the broker is down: say so on the job rather than leave it running forever
        logger.exception("could not queue knowledge import job %s", job_id)
        ImportJob.objects.filter(pk=job_id, status=ImportJob.JobStatus.RUNNING).update(
            status=ImportJob.JobStatus.FAILED, error=f"could not queue the import: {exc}", finished=timezone.now()
        )


def _job_state(job: ImportJob) -> dict:
    return {
        "id": job.pk,
        "owner": job.owner,
        "filename": Path(job.filename).name,
        "status": job.status,
        "status_label": str(ImportJob.JobStatus(job.status).label),
        "done": job.done,
        "total": job.total,
        "error": job.error,
        "finished": job.status != ImportJob.JobStatus.RUNNING,
    }


def _jobs(user) -> QuerySet[ImportJob]:
    return access.filter_by_owner(ImportJob.objects.all(), user, "owner")


@login_required
@require_GET
def import_jobs(request: HttpRequest) -> HttpResponse:
    """Progress of the jobs named in ``?ids=`` (those just uploaded), else of the latest jobs."""
    jobs = _jobs(request.user).order_by("-created", "-id")
    ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()]
    if ids:
        jobs = jobs.filter(pk__in=ids)
    rows = [_job_state(job) for job in jobs[:50]]
    return render(request, "knowledge/import_jobs.html", {"jobs": rows, "selected": bool(ids)})


@login_required
@require_GET
def job_json(request: HttpRequest, job_id: int) -> JsonResponse:
    job = get_object_or_404(_jobs(request.user), pk=job_id)
    response = JsonResponse(_job_state(job))
    response["Cache-Control"] = "no-store"
    return response


# --- learning from calls: per-owner policy, and taking a call back out ---------------------------
@login_required
@require_http_methods(["GET", "POST"])
def learning(request: HttpRequest) -> HttpResponse:
    """Each visible extension's learning policy, and the PBX's recording mode beside it."""
    from webconsole.calls.directory import current_directory

    directory = current_directory()
    owners = _owners(request.user)
    if request.method == "POST":
        owner = request.POST.get("owner", "")
        if owner not in owners:
            return HttpResponse(status=404)
        form = LearningPolicyForm(request.POST, prefix=owner)
        if form.is_valid():
            do_set_learning_policy(owner, **form.cleaned_data)
            messages.success(
                request, gettext("Learning for %(owner)s saved; it applies from the next call.") % {"owner": owner}
            )
            return redirect("knowledge:learning")
        errors = "; ".join(f"{form[name].label}: {' '.join(found)}" for name, found in form.errors.items())
        messages.error(
            request, gettext("Learning for %(owner)s was not saved: %(errors)s") % {"owner": owner, "errors": errors}
        )
    rows = []
    for owner in owners:
        policy = LearningPolicy.for_owner(owner)
        ext = directory.get(owner)
        rows.append(
            {
                "owner": owner,
                "name": ext.owner if ext else "",
                "recording": ext.recording if ext else "",
                "form": LearningPolicyForm(
                    prefix=owner,
                    initial={
                        "learning": policy.learning,
                        "auto_publish": policy.auto_publish,
                        "publish_threshold": policy.publish_threshold,
                    },
                ),
            }
        )
    return render(request, "knowledge/learning.html", {"rows": rows})


@login_required
@require_POST
def exclude_call(request: HttpRequest, call_id: str) -> HttpResponse:
    """Take a call out of the owner's knowledge: its items and proposals go, it is never learned again."""
    call = get_object_or_404(access.calls_for(request.user), call_id=call_id)
    removed = do_exclude_call(call.call_id)
    messages.success(
        request,
        ngettext(
            "Call excluded from learning; %(n)d item removed.",
            "Call excluded from learning; %(n)d items removed.",
            removed,
        )
        % {"n": removed},
    )
    return redirect(_back(request, reverse("console:call", args=[call.call_id])))
