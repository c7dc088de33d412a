"""Admin pages go through the actions; import progress is visible to other sessions while it runs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.urls import reverse

from knowledge.actions import do_add_item, get_retriever
from knowledge.extraction import JudgeUnavailable, LlmJudge, Turn
from knowledge.importing import import_file
from knowledge.models import ImportJob, KnowledgeItem, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("model", ["knowledgeitem", "knowledgeversion", "extractionrun", "importjob"])
def test_admin_pages_render(admin_client: Any, model: str) -> None:
    do_add_item("1002", "The spare key is in the top drawer.")
    assert admin_client.get(reverse(f"admin:knowledge_{model}_changelist")).status_code == 200
    item = KnowledgeItem.objects.get()
    assert admin_client.get(reverse("admin:knowledge_knowledgeitem_change", args=[item.pk])).status_code == 200


def test_admin_approve_action_indexes_the_item(admin_client: Any) -> None:
    [added] = do_add_item("1002", "The spare key is in the top drawer of the reception desk.")
    response = admin_client.post(
        reverse("admin:knowledge_knowledgeitem_changelist"), {"action": "approve", "_selected_action": [added.item.pk]}
    )
    assert response.status_code == 302
    assert KnowledgeItem.objects.get().status == Status.APPROVED
    result = asyncio.run(get_retriever().search("1002", "Where is the spare key?"))
    assert result.passages[0].id == str(added.item.pk)
    admin_client.post(
        reverse("admin:knowledge_knowledgeitem_changelist"), {"action": "reject", "_selected_action": [added.item.pk]}
    )
    assert get_retriever().store.count("1002") == 0


def test_import_progress_is_visible_while_the_import_runs(tmp_path: Path) -> None:
    path = tmp_path / "facts.txt"
    path.write_text("\n\n".join(f"Locker {n} belongs to employee number {n * 3}." for n in range(6)), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    other = connections.create_connection(DEFAULT_DB_ALIAS)

    def peek(done: int, total: int) -> None:
        # another session (the console) reads the job row mid-transaction
        with other.cursor() as cursor:
            cursor.execute("SELECT done, total FROM knowledge_importjob")
            seen.append(cursor.fetchone())

    try:
        job = import_file("1002", path, progress=peek, batch=2)
    finally:
        other.close()
    assert job.status == ImportJob.JobStatus.DONE and (job.done, job.total) == (6, 6)
    # the callback runs before the row is updated for that batch: the others saw 0, 2, 4
    assert seen == [(0, 6), (2, 6), (4, 6)]


def test_a_lock_queued_on_the_jobs_table_mid_import_does_not_deadlock_it(tmp_path: Path) -> None:
    # given an import running, and another session (a migration, a test's TRUNCATE) taking the jobs table
    # and then waiting for the items table, which the import's transaction holds: a progress write
    # would wait for that session, which waits for the import, which waits for the progress write
    path = tmp_path / "facts.txt"
    path.write_text("\n\n".join(f"Locker {n} belongs to employee number {n * 3}." for n in range(6)), encoding="utf-8")
    outcome: list[object] = []

    def lock_the_table() -> None:
        locker = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with locker.cursor() as cursor:  # gives up after 20 s: a deadlock fails the test, never hangs it
                cursor.execute("SET statement_timeout = '20s'")
                cursor.execute(
                    "BEGIN; LOCK TABLE knowledge_importjob, knowledge_knowledgeitem IN ACCESS EXCLUSIVE MODE; COMMIT;"
                )
            outcome.append("locked")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome.append(exc)
        finally:
            locker.close()

    waiting = threading.Thread(target=lock_the_table)

    def ask_for_the_table(done: int, total: int) -> None:
        if done == 2:  # the first batch is written (the callback runs before its progress write)
            waiting.start()
            time.sleep(0.3)  # the lock request is queued before the first progress write

    job = import_file("1002", path, progress=ask_for_the_table, batch=2)
    waiting.join(30)
    # then the import finished, its progress writes skipped while the request waited, and the other
    # session got the table once the import committed
    assert job.status == ImportJob.JobStatus.DONE and (job.done, job.total) == (6, 6)
    assert outcome == ["locked"], outcome


def test_llm_timeout_is_retryable() -> None:
    class SlowModel:
        async def stream(self, messages: list[Any], **kwargs: Any) -> Any:
            await asyncio.sleep(5)
            yield "{}"

    with pytest.raises(JudgeUnavailable, match="no answer within"):
        LlmJudge(SlowModel(), timeout_s=0.05).judge([Turn("callee", "Room 3 at 10 a.m.", 0.0, 1.0)])
