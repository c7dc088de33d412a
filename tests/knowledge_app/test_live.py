"""End to end with real processes: a Celery worker runs the extraction; a Chroma server holds the index."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from knowledge.actions import do_set_status, get_retriever, reset_retriever
from knowledge.models import ExtractionRun, KnowledgeItem, Status
from knowledge.retrieval import ChromaServer
from knowledge.tasks import extract_knowledge_task
from tests.knowledge_app.conftest import PHONE_CALL_TURNS, call_events, publish, write_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_worker_extracts_a_call_end_to_end(knowledge_worker: Path) -> None:
    # given: the recorder wrote the call where the worker reads recordings
    write_call(knowledge_worker, "worker-call-1", PHONE_CALL_TURNS)
    # when
    summary = extract_knowledge_task.delay("worker-call-1").get(timeout=60)
    # then
    assert summary["status"] == "done" and summary["items_created"] == 2
    assert KnowledgeItem.objects.filter(source_call_id="worker-call-1", source_speaker="callee").count() == 2
    # a second delivery of the same call is a no-op
    assert extract_knowledge_task.delay("worker-call-1").get(timeout=60)["items_created"] == 2
    assert KnowledgeItem.objects.count() == 2 and ExtractionRun.objects.get().status == "done"


@pytest.mark.slow
def test_worker_waits_for_the_console_to_store_the_calls_end(knowledge_worker: Path) -> None:
    # given the ARI app queued the extraction as it published the call's end, not yet applied by the console
    *before_the_end, end = call_events("late-call", PHONE_CALL_TURNS)
    publish("late-call", *before_the_end)
    result = extract_knowledge_task.delay("late-call")
    deadline = time.monotonic() + 30
    while not ExtractionRun.objects.filter(call_id="late-call").exists():  # the worker looked, and waits
        assert time.monotonic() < deadline, "the worker never took the task"
        time.sleep(0.1)
    # when the console applies the end a moment later
    publish("late-call", end)
    # then the waiting task learned from the whole call
    summary = result.get(timeout=60)
    assert (summary["status"], summary["items_created"]) == ("done", 2), summary


@pytest.fixture
def chroma_settings(settings: Any, tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma")
    try:
        server.start(timeout_s=30)
    except Exception as exc:  # the default store must be testable here: fail, never skip
        pytest.fail(f"the Chroma server could not start: {exc!r}", pytrace=False)
    settings.AIPBX_KNOWLEDGE_STORE = "chroma"
    settings.AIPBX_CHROMA_HOST, settings.AIPBX_CHROMA_PORT = server.host, server.port
    settings.AIPBX_CHROMA_TOKEN = server.token
    reset_retriever()
    yield server
    reset_retriever()
    server.stop()


@pytest.mark.chroma
def test_import_then_search_on_a_real_chroma_server(chroma_settings: ChromaServer, tmp_path: Path) -> None:
    # given
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer\nWhere do I park?,Visitors park in basement level B2.\n"
        "When is lunch?,Lunch is served from noon to 1 p.m. in the cafeteria.\n",
        encoding="utf-8",
    )
    # when
    call_command("import_knowledge", "--owner", "1002", str(path), stdout=StringIO(), stderr=StringIO())
    # then
    parking = KnowledgeItem.objects.get(text__contains="park")
    result = asyncio.run(get_retriever().search("1002", "Where can I leave my car?"))
    assert result.passages[0].id == str(parking.pk)
    assert asyncio.run(get_retriever().search("1003", "Where can I leave my car?")).passages == []
    # rejecting removes it from Chroma (its answer and its question); reindex keeps what PostgreSQL approves
    assert get_retriever().store.count("1002") == 4
    do_set_status(parking.pk, Status.REJECTED)
    assert get_retriever().store.count("1002") == 2
    call_command("reindex_knowledge", stdout=StringIO())
    assert get_retriever().store.count("1002") == 2
