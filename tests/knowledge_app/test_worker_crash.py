"""A real worker killed with SIGKILL in the middle of an extraction: the broker redelivers, nothing doubles.

The judge is an OpenAI-compatible server (the fake, over the real ``openai``
client) that holds its answer until the test releases it, so "mid-task" is a
fact the server reports (it has the worker's request), not a guess from a sleep.
The worker runs with the solo pool, so SIGKILL takes the task down with the
whole process, like an OOM kill or a lost host: only the Redis transport's
visibility timeout can bring the task back. These workers use a 3 s visibility
timeout and their own broker key prefix, so the short timeout cannot redeliver
another test session's tasks in the shared Redis.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from aipbx.privacy import mask_pii
from knowledge.models import ExtractionRun, KnowledgeItem, Status
from knowledge.tasks import extract_knowledge_task
from tests.fakes.openai_http import FakeOpenAI, OpenAIScript
from tests.fakes.threaded import ServerThread
from tests.knowledge_app.conftest import PHONE_CALL_TURNS, spawn_worker, stop_worker, wait_until_finished, write_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VISIBILITY_TIMEOUT_S = 3.0
STEP_TIMEOUT_S = 20.0
ANSWER = {
    "is_useful": True,
    "confidence": 0.9,
    "reason": "a delivery time and a call-back number",
    "extracted_info": [
        {
            "text": "The delivery arrives tomorrow at 9 a.m. at the lobby of building 2.",
            "category": "약속",
            "keywords": ["delivery", "Acme"],
            "speaker": "callee",
        },
        {
            "text": "Call the owner back at 010-1234-5678.",
            "category": "지시",
            "keywords": ["call back"],
            "speaker": "callee",
        },
    ],
}


def deltas(answer: dict[str, object]) -> list[str]:
    text = json.dumps(answer, ensure_ascii=False)
    return [text[i : i + 16] for i in range(0, len(text), 16)]


def test_worker_killed_mid_extraction_redelivers_without_duplicates(knowledge_settings: Path, tmp_path: Path) -> None:
    from webconsole.celery import app

    tag = uuid.uuid4().hex[:10]
    prefix, queue = f"aipbx-kbcrash-{tag}:", f"kbcrash-{tag}"  # inside the session Redis user's keys
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT_S, "global_keyprefix": prefix}
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    log_path = tmp_path / "workers.log"
    write_call(knowledge_settings, "crash-call", PHONE_CALL_TURNS)
    with ServerThread(FakeOpenAI()) as fake:
        release = fake.new_event()
        fake.server.script = OpenAIScript(deltas=deltas(ANSWER), hold_chat=True, release=release)
        env = {
            "AIPBX_LLM": "openai",
            "OPENAI_API_KEY": "sk-test",
            "AIPBX_OPENAI_BASE_URL": fake.server.api_url,
            "AIPBX_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
            "AIPBX_CELERY_KEY_PREFIX": prefix,
        }
        workers = []
        try:
            # given: a worker is inside the judge's HTTP request for the call
            workers.append(spawn_worker(queue, knowledge_settings, log_path, **env))
            with app.connection_for_write(transport_options=transport) as connection:
                extract_knowledge_task.apply_async(["crash-call"], queue=queue, connection=connection)
            asked = fake.wait_for_requests(1, STEP_TIMEOUT_S)
            assert asked, f"the worker never asked the judge:\n{log_path.read_text()}"
            # when: it is killed there
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)
            # then: nothing was written, the run is still open, the broker still holds the unacknowledged task
            assert ExtractionRun.objects.get(call_id="crash-call").status == ExtractionRun.RunStatus.RUNNING
            assert not KnowledgeItem.objects.exists()
            unacked = broker.zrange(f"{prefix}unacked_index", 0, -1, withscores=True)
            assert len(unacked) == 1
            fake.server.script.hold_chat = False
            fake.call(release.set)
            # when: a worker starts once the task has been unacknowledged for the visibility timeout
            # (a starting worker restores such tasks; kombu scores them by delivery time)
            time.sleep(max(0.0, unacked[0][1] + VISIBILITY_TIMEOUT_S + 0.2 - time.time()))
            workers.append(spawn_worker(queue, knowledge_settings, log_path, **env))
            run = wait_until_finished("crash-call", STEP_TIMEOUT_S)
            # then: the redelivered task ran to the end, exactly once more, with no duplicate item
            assert run is not None, f"the task was not redelivered:\n{log_path.read_text()}"
            assert (run.status, run.items_created) == ("done", 2), run.reason
            assert len(fake.server.requests) == 2
            items = KnowledgeItem.objects.filter(owner="1002")
            assert sorted(i.text for i in items) == sorted(mask_pii(e["text"]) for e in ANSWER["extracted_info"])
            assert {i.status for i in items} == {Status.APPROVED}
            assert {i.source_call_id for i in items} == {"crash-call"}
            assert ExtractionRun.objects.count() == 1
            # and the redelivered message is acknowledged (just after the run's commit: poll the broker)
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while broker.zcard(f"{prefix}unacked_index") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert broker.zcard(f"{prefix}unacked_index") == 0
        finally:
            for proc in workers:
                stop_worker(proc)
            for key in broker.scan_iter(f"{prefix}*"):
                broker.delete(key)
