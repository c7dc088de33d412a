"""Failed extractions are run again on request: ``manage.py retry_extractions`` and the admin action.

Both send the runs to the real Celery worker (the ``knowledge_worker`` fixture),
which runs the real task again; the fix between the two attempts is the call
itself, which the console had not stored when the first attempt ran.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from knowledge.models import ExtractionRun, KnowledgeItem
from knowledge.tasks import extract_knowledge_task
from tests.knowledge_app.conftest import PHONE_CALL_TURNS, wait_until_finished, write_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def failed_run(call_id: str) -> ExtractionRun:
    """A run that failed because the console never stored the call (its waits run at once, eagerly)."""
    summary = extract_knowledge_task.apply(args=[call_id]).get()
    assert summary["status"] == "failed" and "has not stored the end of call" in summary["reason"]
    return ExtractionRun.objects.get(call_id=call_id)


def test_command_reruns_failed_extractions_on_the_worker(knowledge_worker: Path) -> None:
    # given: two failed runs and a done one
    failed_run("retry-a")
    failed_run("retry-b")
    write_call(knowledge_worker, "retry-done", PHONE_CALL_TURNS)
    assert extract_knowledge_task.delay("retry-done").get(timeout=30)["status"] == "done"
    write_call(knowledge_worker, "retry-a", PHONE_CALL_TURNS)
    # when: only retry-a is asked for
    out = StringIO()
    call_command("retry_extractions", "--call-id", "retry-a", "--wait", "30", stdout=out, stderr=StringIO())
    # then: retry-a ran again to the end; retry-b is still failed, the done run untouched
    assert "queued 1 extraction run(s): retry-a" in out.getvalue() and "retry-a: done (0 item(s))" in out.getvalue()
    runs = {run.call_id: run for run in ExtractionRun.objects.all()}
    # retry-a told the same facts as retry-done: merged into its items (0 new), not stored twice
    assert runs["retry-a"].status == "done" and runs["retry-a"].error == ""
    assert runs["retry-b"].status == "failed" and runs["retry-done"].items_created == 2
    assert KnowledgeItem.objects.count() == 2
    # when: no call id: every failed run
    write_call(knowledge_worker, "retry-b", PHONE_CALL_TURNS, callee="1003")
    out = StringIO()
    call_command("retry_extractions", "--wait", "30", stdout=out, stderr=StringIO())
    assert "queued 1 extraction run(s): retry-b" in out.getvalue() and "retry-b: done (2 item(s))" in out.getvalue()
    assert KnowledgeItem.objects.filter(owner="1003").count() == 2
    # nothing left to retry; a finished run named explicitly is refused
    out = StringIO()
    call_command("retry_extractions", stdout=out)
    assert "no failed extraction runs" in out.getvalue()
    err = StringIO()
    with pytest.raises(CommandError, match="none of the named calls has a failed extraction run"):
        call_command("retry_extractions", "--call-id", "retry-done", stderr=err)
    assert "retry-done: not failed (done), left alone" in err.getvalue()


def test_command_queues_a_call_that_never_ran(knowledge_worker: Path) -> None:
    write_call(knowledge_worker, "never-ran", PHONE_CALL_TURNS)
    out = StringIO()
    call_command("retry_extractions", "--call-id", "never-ran", "--wait", "30", stdout=out)
    assert "never-ran: done (2 item(s))" in out.getvalue()


def test_admin_action_reruns_the_selected_failed_runs(knowledge_worker: Path, admin_client: Any) -> None:
    # given
    first, second = failed_run("admin-a"), failed_run("admin-b")
    write_call(knowledge_worker, "admin-a", PHONE_CALL_TURNS)
    # when
    response = admin_client.post(
        reverse("admin:knowledge_extractionrun_changelist"),
        {"action": "retry", "_selected_action": [first.pk]},
        follow=True,
    )
    # then
    assert "Queued 1 extraction(s) again: admin-a." in response.content.decode()
    run = wait_until_finished("admin-a", 30)
    assert run is not None and (run.status, run.items_created) == ("done", 2)
    assert ExtractionRun.objects.get(pk=second.pk).status == "failed"
    # a run that has not failed is left alone, and the page says so
    response = admin_client.post(
        reverse("admin:knowledge_extractionrun_changelist"),
        {"action": "retry", "_selected_action": [first.pk]},
        follow=True,
    )
    assert "1 selected run(s) had not failed and were left alone." in response.content.decode()
    assert ExtractionRun.objects.get(pk=first.pk).status == "done"
