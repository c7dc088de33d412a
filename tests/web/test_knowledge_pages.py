"""The console's knowledge manager: every page for an admin and for an operator of 1002 only.

Real PostgreSQL; the vector index is a per-test in-memory store (as in ``tests/knowledge_app``), and
``transaction=True`` lets ``on_commit`` index updates fire as in production. Imports are queued by the
upload page (the queueing is recorded, not sent) and run by calling the Celery task in-process.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from knowledge.actions import do_add_item, do_record_usage, get_retriever, reset_retriever
from knowledge.models import ImportJob, KnowledgeItem, KnowledgeVersion, Source, Status
from knowledge.tasks import import_knowledge_task
from webconsole.calls.models import Extension, Operator

pytestmark = pytest.mark.django_db(transaction=True)

PARKING = "Visitors park in the basement level B2 of the east building."
HOURS_1003 = "The dental clinic is open on Saturdays from 10 a.m. until 2 p.m."
FAQ_CSV = b"""question,answer
When is the office open?,"Weekdays from 9 a.m. to 6 p.m., closed on public holidays."
What is the guest Wi-Fi password?,The guest network is AcmeGuest and the password is sunflower42.
"""
GUIDE_MD = b"""# Deliveries

Parcels are received at the front desk on the first floor until 5 p.m.
"""


@pytest.fixture(autouse=True)
def knowledge_settings(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """A fresh in-memory index per test and a scratch upload directory (yielded)."""
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kbweb{uuid.uuid4().hex[:8]}"
    settings.AIPBX_KNOWLEDGE_UPLOAD_DIR = tmp_path / "uploads"
    reset_retriever()
    yield tmp_path / "uploads"
    reset_retriever()


@pytest.fixture
def admin() -> Client:
    for number in ("1002", "1003"):
        Extension.objects.get_or_create(number=number)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "x"))
    return client


@pytest.fixture
def operator_user() -> User:
    user = User.objects.create_user("op1002", password="x")
    operator = Operator.objects.create(user=user, role="operator")
    operator.extensions.add(Extension.objects.get_or_create(number="1002")[0])
    Extension.objects.get_or_create(number="1003")
    return user


@pytest.fixture
def operator(operator_user: User) -> Client:
    client = Client()
    client.force_login(operator_user)
    return client


@pytest.fixture
def items() -> dict[str, KnowledgeItem]:
    """A pending 1002 item and a pending 1003 item."""
    mine = do_add_item("1002", PARKING, keywords=["parking", "B2"], status=Status.PENDING)[0].item
    theirs = do_add_item("1003", HOURS_1003, keywords=["hours"], status=Status.PENDING)[0].item
    return {"1002": mine, "1003": theirs}


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Job ids the upload page queues; nothing is sent to the broker (the test runs the task itself)."""
    sent: list[int] = []
    monkeypatch.setattr(import_knowledge_task, "delay", lambda job_id: sent.append(job_id))
    return sent


def search_ids(owner: str, question: str) -> list[int]:
    result = asyncio.run(get_retriever().search(owner, question))
    return [int(p.id) for p in result.passages]


def url(name: str, *args: Any) -> str:
    return reverse(f"knowledge:{name}", args=args)


def test_anonymous_users_are_sent_to_the_login_page(items: dict[str, KnowledgeItem]) -> None:
    pk = items["1002"].pk
    job = ImportJob.objects.create(owner="1002", filename="/nowhere/faq.csv")
    client = Client()
    gets = [
        url("list"),
        url("add"),
        url("item", pk),
        url("edit", pk),
        url("delete", pk),
        url("import"),
        url("imports"),
        url("job-json", job.pk),
    ]
    posts = [url("add"), url("edit", pk), url("delete", pk), url("approve", pk), url("reject", pk), url("import")]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(f"/accounts/login/?next={path}"), path
    for path in posts:
        response = client.post(path, {})
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path
    assert KnowledgeItem.objects.get(pk=pk).status == Status.PENDING


def test_admin_list_shows_every_owner_and_the_pending_count(admin: Client, items: dict[str, KnowledgeItem]) -> None:
    response = admin.get(url("list"))

    assert response.status_code == 200
    page = response.content.decode()
    assert PARKING in page and HOURS_1003 in page
    assert response.context["pending"] == 2
    assert 'data-pending="2"' in page
    assert f'action="{url("approve", items["1003"].pk)}"' in page


def test_operator_list_never_shows_other_owners(operator: Client, items: dict[str, KnowledgeItem]) -> None:
    for query in ({}, {"owner": "1003"}, {"q": "dental"}, {"status": "pending"}, {"page": "2"}):
        response = operator.get(url("list"), query)
        assert response.status_code == 200
        assert HOURS_1003 not in response.content.decode(), query
        assert all(item.owner == "1002" for item in response.context["page"]), query
    assert operator.get(url("list")).context["pending"] == 1
    # An owner outside the operator's extensions is not even offered as a filter.
    assert [c[0] for c in operator.get(url("list")).context["form"].fields["owner"].choices] == ["", "1002"]


def test_list_filters_by_text_keyword_category_status_source_and_paginates(
    admin: Client, items: dict[str, KnowledgeItem], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    manual = do_add_item(
        "1002", "The CEO prefers email over phone calls.", category="instruction", status=Status.APPROVED
    )[0].item

    def shown(**query: str) -> set[int]:
        return {item.pk for item in admin.get(url("list"), query).context["page"]}

    # then
    assert shown(q="basement") == {items["1002"].pk}  # substring of the text
    assert shown(q="PARKING") == {items["1002"].pk}  # a keyword, case-insensitive
    assert shown(owner="1003") == {items["1003"].pk}
    assert shown(category="instruction") == {manual.pk}
    assert shown(status="approved") == {manual.pk}
    assert shown(status="pending", owner="1002") == {items["1002"].pk}
    assert shown(source="call") == set()
    monkeypatch.setattr("webconsole.knowledge.views.PAGE_SIZE", 2)
    first, second = admin.get(url("list")), admin.get(url("list"), {"page": "2"})
    assert first.context["page"].paginator.num_pages == 2
    assert len(first.context["page"]) == 2 and len(second.context["page"]) == 1
    assert "page=2" in first.content.decode()


def test_semantic_search_shows_the_owners_passages_with_scores(admin: Client, operator: Client) -> None:
    # given
    item = do_add_item("1002", PARKING, status=Status.APPROVED)[0].item
    do_add_item("1003", "Visitors of the clinic park behind the pharmacy.", status=Status.APPROVED)
    # when
    response = operator.get(url("list"), {"ask": "Where can I park my car?", "ask_owner": "1002"})
    # then
    assert response.status_code == 200
    answers = response.context["answers"]
    assert answers[0]["item"] == item
    assert 0.0 < answers[0]["passage"].score <= 1.0
    assert all(a["item"] is None or a["item"].owner == "1002" for a in answers)
    page = response.content.decode()
    assert f"{answers[0]['passage'].score:.3f}" in page
    assert "behind the pharmacy" not in page
    # An operator cannot ask another owner's assistant.
    refused = operator.get(url("list"), {"ask": "Where can I park?", "ask_owner": "1003"})
    assert refused.context["answers"] is None
    assert "ask_owner" in refused.context["ask_form"].errors
    assert (
        "behind the pharmacy" in admin.get(url("list"), {"ask": "Where to park?", "ask_owner": "1003"}).content.decode()
    )


@pytest.mark.parametrize("name", ["item", "edit", "delete"])
def test_operator_gets_404_for_another_owners_item_pages(
    operator: Client, admin: Client, items: dict[str, KnowledgeItem], name: str
) -> None:
    theirs, mine = items["1003"], items["1002"]

    assert operator.get(url(name, theirs.pk)).status_code == 404
    assert operator.get(url(name, mine.pk)).status_code == 200
    assert admin.get(url(name, theirs.pk)).status_code == 200


def test_operator_cannot_change_another_owners_item(operator: Client, items: dict[str, KnowledgeItem]) -> None:
    theirs = items["1003"]

    assert operator.post(url("edit", theirs.pk), {"text": "Hacked.", "category": "info"}).status_code == 404
    assert operator.post(url("approve", theirs.pk)).status_code == 404
    assert operator.post(url("reject", theirs.pk)).status_code == 404
    assert operator.post(url("delete", theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.text, theirs.status, theirs.version) == (HOURS_1003, Status.PENDING, 1)
    assert search_ids("1003", "When is the clinic open on Saturday?") == []


def test_add_approves_a_manual_item_for_an_own_extension_only(operator: Client) -> None:
    # when
    response = operator.post(
        url("add"), {"owner": "1002", "text": PARKING, "category": "info", "keywords": "parking, B2, parking"}
    )
    # then
    item = KnowledgeItem.objects.get()
    assert response.status_code == 302 and response["Location"] == url("item", item.pk)
    assert (item.owner, item.source, item.status, item.version) == ("1002", Source.MANUAL, Status.APPROVED, 1)
    assert item.keywords == ["parking", "B2"]
    assert KnowledgeVersion.objects.get(item=item).edited_by.username == "op1002"
    assert search_ids("1002", "Where do visitors park?")[0] == item.pk
    # An owner outside the operator's extensions is refused; nothing is written.
    refused = operator.post(url("add"), {"owner": "1003", "text": HOURS_1003, "category": "info"})
    assert refused.status_code == 200
    assert "owner" in refused.context["form"].errors
    assert not KnowledgeItem.objects.filter(owner="1003").exists()
    assert operator.get(url("add")).status_code == 200


def test_admin_adds_for_any_extension(admin: Client) -> None:
    response = admin.post(url("add"), {"owner": "1003", "text": HOURS_1003, "category": "appointment"})

    assert response.status_code == 302
    assert KnowledgeItem.objects.get().owner == "1003"


def test_edit_creates_a_version_shown_on_the_detail_page(operator: Client, items: dict[str, KnowledgeItem]) -> None:
    # given
    item = items["1002"]
    do_add_item("1002", PARKING, status=Status.APPROVED)  # approves the same item (a duplicate)
    new_text = "Visitors park on level B3 of the west building; show the ticket at the desk."
    # when
    response = operator.post(url("edit", item.pk), {"text": new_text, "category": "instruction", "keywords": "parking"})
    # then
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.text, item.category, item.version, item.keywords) == (new_text, "instruction", 2, ["parking"])
    assert list(item.versions.values_list("version", "text")) == [(1, PARKING), (2, new_text)]
    page = operator.get(url("item", item.pk)).content.decode()
    assert 'data-version="1"' in page and 'data-version="2"' in page
    assert PARKING in page and new_text in page
    result = asyncio.run(get_retriever().search("1002", "Where do visitors park?"))
    assert result.passages[0].text == new_text
    # Saving without a change keeps the version.
    operator.post(url("edit", item.pk), {"text": new_text, "category": "instruction", "keywords": "parking"})
    item.refresh_from_db()
    assert item.version == 2


def test_approve_puts_the_item_into_the_retriever_and_reject_removes_it(
    operator: Client, items: dict[str, KnowledgeItem]
) -> None:
    item = items["1002"]
    question = "Where can visitors park?"
    assert search_ids("1002", question) == []

    back = f"{url('list')}?status=pending"
    approved = operator.post(url("approve", item.pk), {"next": back})
    assert approved.status_code == 302 and approved["Location"] == back
    assert KnowledgeItem.objects.get(pk=item.pk).status == Status.APPROVED
    assert search_ids("1002", question) == [item.pk]

    rejected = operator.post(url("reject", item.pk), {"next": "https://evil.example/"})
    assert rejected.status_code == 302 and rejected["Location"] == url("item", item.pk)  # foreign next ignored
    assert KnowledgeItem.objects.get(pk=item.pk).status == Status.REJECTED
    assert search_ids("1002", question) == []


def test_destructive_actions_are_post_only(operator: Client, items: dict[str, KnowledgeItem]) -> None:
    item = items["1002"]

    assert operator.get(url("approve", item.pk)).status_code == 405
    assert operator.get(url("reject", item.pk)).status_code == 405
    confirm = operator.get(url("delete", item.pk))
    assert confirm.status_code == 200 and PARKING in confirm.content.decode()
    assert KnowledgeItem.objects.filter(pk=item.pk).exists()

    response = operator.post(url("delete", item.pk))
    assert response.status_code == 302 and response["Location"] == url("list")
    assert not KnowledgeItem.objects.filter(pk=item.pk).exists()
    assert not KnowledgeVersion.objects.filter(item_id=item.pk).exists()


def test_delete_removes_an_approved_item_from_the_retriever(operator: Client) -> None:
    item = do_add_item("1002", PARKING, status=Status.APPROVED)[0].item
    assert search_ids("1002", "Where do visitors park?") == [item.pk]

    operator.post(url("delete", item.pk))

    assert search_ids("1002", "Where do visitors park?") == []


def test_posts_without_a_csrf_token_are_refused(operator_user: User, items: dict[str, KnowledgeItem]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    item = items["1002"]

    for path, data in [
        (url("approve", item.pk), {}),
        (url("reject", item.pk), {}),
        (url("delete", item.pk), {}),
        (url("edit", item.pk), {"text": "x", "category": "info"}),
        (url("add"), {"owner": "1002", "text": "x", "category": "info"}),
        (url("import"), {}),
    ]:
        assert client.post(path, data).status_code == 403, path
    item.refresh_from_db()
    assert (item.status, item.version) == (Status.PENDING, 1)
    assert KnowledgeItem.objects.count() == 2
    # With the token from the page, the same form goes through.
    page = client.get(url("list")).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert client.post(url("approve", item.pk), {"csrfmiddlewaretoken": token}).status_code == 302
    assert KnowledgeItem.objects.get(pk=item.pk).status == Status.APPROVED


def test_detail_shows_provenance_and_usage(operator: Client) -> None:
    # given
    item = do_add_item(
        "1002",
        "The delivery arrives tomorrow at 9 a.m. at the lobby of building 2.",
        source=Source.CALL,
        source_call_id="1712345678.42",
        source_speaker="caller",
        source_span={"start_s": 6.5, "end_s": 14.0},
        confidence=0.83,
    )[0].item
    do_record_usage([item.pk])
    do_record_usage([item.pk])
    # when
    response = operator.get(url("item", item.pk))
    # then
    page = response.content.decode()
    assert f'href="{reverse("console:call", args=["1712345678.42"])}#t=6.5"' in page
    assert "caller" in page and "0.83" in page
    assert "used in 2 answers" in page
    manual = do_add_item("1002", PARKING, status=Status.APPROVED)[0].item
    assert "#t=" not in operator.get(url("item", manual.pk)).content.decode()


def test_import_upload_runs_as_a_task_with_progress(
    operator: Client, queued: list[int], knowledge_settings: Path
) -> None:
    # when: two files are uploaded
    response = operator.post(
        url("import"),
        {
            "owner": "1002",
            "files": [SimpleUploadedFile("faq.csv", FAQ_CSV, "text/csv"), SimpleUploadedFile("guide.md", GUIDE_MD)],
        },
    )
    # then: a job per file, queued after the commit, not run yet
    jobs = list(ImportJob.objects.order_by("pk"))
    assert [Path(job.filename).name for job in jobs] == ["faq.csv", "guide.md"]
    assert queued == [job.pk for job in jobs]
    assert response.status_code == 302
    assert response["Location"] == f"{url('imports')}?ids={jobs[0].pk},{jobs[1].pk}"
    progress_page = operator.get(response["Location"]).content.decode()
    assert f'data-job-url="{url("job-json", jobs[0].pk)}"' in progress_page
    assert 'data-finished="0"' in progress_page
    before = json.loads(operator.get(url("job-json", jobs[0].pk)).content)
    assert (before["status"], before["done"], before["finished"]) == ("running", 0, False)

    # when: the worker runs the tasks
    results = [import_knowledge_task.apply(args=[job_id]).get() for job_id in queued]

    # then
    assert [r["status"] for r in results] == ["done", "done"]
    after = json.loads(operator.get(url("job-json", jobs[0].pk)).content)
    assert after == {
        "id": jobs[0].pk,
        "owner": "1002",
        "filename": "faq.csv",
        "status": "done",
        "status_label": "Done",
        "done": 2,
        "total": 2,
        "error": "",
        "finished": True,
    }
    items = KnowledgeItem.objects.filter(owner="1002")
    assert items.count() == 3
    assert set(items.values_list("status", "source")) == {(Status.APPROVED, Source.IMPORT)}
    wifi = items.get(text__contains="sunflower42")
    assert search_ids("1002", "What is the Wi-Fi password?")[0] == wifi.pk
    assert not any(knowledge_settings.rglob("*.*")), "uploaded files are deleted once imported"
    # Idempotent: running a finished job again writes nothing.
    assert import_knowledge_task.apply(args=[queued[0]]).get()["status"] == "done"
    assert KnowledgeItem.objects.count() == 3


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("faq.csv", b"q,a\nWhen?,Now.\n", "CSV needs 'question' and 'answer' columns"),
    ],
)
def test_a_bad_file_fails_its_job_with_a_clear_error_and_writes_nothing(
    operator: Client, queued: list[int], knowledge_settings: Path, name: str, content: bytes, message: str
) -> None:
    operator.post(url("import"), {"owner": "1002", "files": [SimpleUploadedFile(name, content)]})

    result = import_knowledge_task.apply(args=[queued[0]]).get()

    assert result["status"] == "failed"
    state = json.loads(operator.get(url("job-json", queued[0])).content)
    assert state["status"] == "failed" and state["finished"] is True and state["done"] == 0
    assert message in state["error"] and state["error"].startswith(name)
    assert str(knowledge_settings) not in state["error"]  # no server paths in the message
    assert not KnowledgeItem.objects.exists()
    assert escape(message) in operator.get(url("imports")).content.decode()


def test_import_form_refuses_other_owners_and_unsupported_files(operator: Client, queued: list[int]) -> None:
    assert operator.get(url("import")).status_code == 200
    other = operator.post(url("import"), {"owner": "1003", "files": [SimpleUploadedFile("a.txt", b"Hello.")]})
    pdf = operator.post(url("import"), {"owner": "1002", "files": [SimpleUploadedFile("a.pdf", b"%PDF-1.4")]})

    assert other.status_code == 200 and "owner" in other.context["form"].errors
    assert pdf.status_code == 200 and "unsupported file type .pdf" in str(pdf.context["form"].errors)
    assert not ImportJob.objects.exists() and queued == []


def test_operator_cannot_see_another_owners_import_job(operator: Client, admin: Client) -> None:
    theirs = ImportJob.objects.create(owner="1003", filename="/uploads/x/secret-1003.csv")
    mine = ImportJob.objects.create(owner="1002", filename="/uploads/y/faq-1002.csv")

    assert operator.get(url("job-json", theirs.pk)).status_code == 404
    assert operator.get(url("job-json", mine.pk)).status_code == 200
    page = operator.get(url("imports"), {"ids": f"{theirs.pk},{mine.pk}"}).content.decode()
    assert "faq-1002.csv" in page and "secret-1003.csv" not in page
    assert admin.get(url("job-json", theirs.pk)).status_code == 200
