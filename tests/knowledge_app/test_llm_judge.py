"""The extraction judge follows the configured LLM (AIPBX_LLM), over the real SDKs and wire protocols.

The OpenAI-compatible and Gemini servers are the local fakes (tests/fakes), run
on their own loop in a thread because the judge blocks (``asyncio.run``) in the
task's thread, as it does in a worker. The task is run through Celery's
``apply`` (the task code, its retry policy included, in this process) or by a
real worker process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipbx.privacy import mask_pii
from knowledge.extraction import LlmJudge, RuleJudge
from knowledge.models import Category, ExtractionRun, KnowledgeItem, Status
from knowledge.tasks import default_judge, extract_knowledge_task, retry_delay, run_extraction
from tests.fakes.gemini_http import FakeGemini, GeminiScript
from tests.fakes.openai_http import FakeOpenAI, OpenAIScript
from tests.fakes.threaded import ServerThread
from tests.knowledge_app.conftest import PHONE_CALL_TURNS, spawn_worker, stop_worker, write_call

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = {
    "is_useful": True,
    "confidence": 0.88,
    "reason": "delivery time and call-back number",
    "extracted_info": [
        {
            "text": "The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2.",
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


def pieces(text: str, size: int = 13) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture
def openai_judge(settings: Any) -> Iterator[ServerThread[FakeOpenAI]]:
    """AIPBX_LLM=openai pointed at the fake OpenAI-compatible server."""
    with ServerThread(FakeOpenAI()) as fake:
        fake.server.script = OpenAIScript(deltas=pieces(json.dumps(ANSWER, ensure_ascii=False)))
        settings.AIPBX_LLM = "openai"
        settings.AIPBX_LLM_ENV = {
            "OPENAI_API_KEY": "sk-test",
            "AIPBX_OPENAI_BASE_URL": fake.server.api_url,
            "AIPBX_OPENAI_MODEL": "judge-model",
        }
        yield fake


def test_offline_by_default_llm_when_configured(settings: Any) -> None:
    assert isinstance(default_judge(), RuleJudge)  # AIPBX_LLM=local
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV = "openai", {"OPENAI_API_KEY": "sk-test"}
    assert isinstance(default_judge(), LlmJudge)
    settings.AIPBX_KNOWLEDGE_JUDGE = "rule"
    assert isinstance(default_judge(), RuleJudge)


def test_openai_judge_over_the_wire_stores_the_owners_facts(
    knowledge_settings: Path, openai_judge: ServerThread[FakeOpenAI]
) -> None:
    # given
    write_call(knowledge_settings, "llm-call", PHONE_CALL_TURNS)
    # when
    summary = extract_knowledge_task.apply(args=["llm-call"]).get()
    # then: the design's prompt went out, the design's JSON came back and became the owner's facts
    assert summary == {"call_id": "llm-call", "status": "done", "items_created": 2, "reason": ANSWER["reason"]}
    [request] = openai_judge.server.requests
    assert request.json["model"] == "judge-model" and request.json["temperature"] == 0.0
    prompt = request.json["messages"][-1]["content"]
    assert "통화 내용:" in prompt and '"is_useful": true/false' in prompt and "[caller] Hi, this is Alex" in prompt
    items = list(KnowledgeItem.objects.order_by("pk"))
    assert [i.text for i in items] == [mask_pii(e["text"]) for e in ANSWER["extracted_info"]]
    assert "010-1234-5678" not in prompt and "[phone …5678]" in prompt  # masked before the model saw it
    assert [i.category for i in items] == [Category.APPOINTMENT, Category.INSTRUCTION]
    assert {i.status for i in items} == {Status.APPROVED} and {i.confidence for i in items} == {0.88}
    assert items[0].keywords == ["delivery", "Acme"] and items[0].source_speaker == "callee"


def test_gemini_judge_over_the_wire(knowledge_settings: Path, settings: Any) -> None:
    write_call(knowledge_settings, "gemini-call", PHONE_CALL_TURNS)
    answer = {
        "is_useful": True,
        "confidence": 0.8,
        "reason": "callback",
        "extracted_info": [
            {"text": "Alex asks for a call back at 010-1234-5678.", "category": "지시", "keywords": ["callback"]}
        ],
    }
    with ServerThread(FakeGemini()) as fake:
        fake.server.script = GeminiScript(deltas=pieces("```json\n" + json.dumps(answer) + "\n```"))
        settings.AIPBX_LLM = "gemini"
        settings.AIPBX_LLM_ENV = {"GEMINI_API_KEY": "gm-test", "AIPBX_GEMINI_BASE_URL": fake.server.base_url}
        summary = extract_knowledge_task.apply(args=["gemini-call"]).get()
        assert len(fake.server.requests) == 1 and ":streamGenerateContent" in fake.server.requests[0].path
    assert summary["status"] == "done" and summary["items_created"] == 1
    # the model echoed a number: it is masked before it is stored (issue 7)
    assert KnowledgeItem.objects.get().text == "Alex asks for a call back at [phone …5678]."


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('Sure! Here it is: {"is_useful": true, "confidence": 0.9, "extracted_info": [', "not valid JSON"),
        # valid JSON whose second entry is broken: the first must not be stored on its own
        (
            json.dumps({**ANSWER, "extracted_info": [ANSWER["extracted_info"][0], {"category": "정보"}]}),
            "extracted_info[1] needs a non-empty 'text'",
        ),
    ],
)
def test_malformed_llm_json_fails_the_run_without_retry_or_writes(
    knowledge_settings: Path, openai_judge: ServerThread[FakeOpenAI], answer: str, reason: str
) -> None:
    write_call(knowledge_settings, "bad-json", PHONE_CALL_TURNS)
    openai_judge.server.script.deltas = pieces(answer)
    summary = extract_knowledge_task.apply(args=["bad-json"]).get()
    assert summary["status"] == "failed" and reason in summary["reason"]
    run = ExtractionRun.objects.get()
    assert run.error == "ExtractionError" and run.finished is not None
    assert not KnowledgeItem.objects.exists()
    assert len(openai_judge.server.requests) == 1  # a malformed answer is not retried


@pytest.mark.parametrize(("status", "reason"), [(401, "access refused"), (400, "request rejected")])
def test_permanent_llm_errors_fail_at_once(
    knowledge_settings: Path, openai_judge: ServerThread[FakeOpenAI], status: int, reason: str
) -> None:
    write_call(knowledge_settings, "perm-call", PHONE_CALL_TURNS)
    openai_judge.server.script.status = status
    summary = extract_knowledge_task.apply(args=["perm-call"]).get()
    assert summary["status"] == "failed" and reason in summary["reason"] and f"HTTP {status}" in summary["reason"]
    assert len(openai_judge.server.requests) == 1 and not KnowledgeItem.objects.exists()


def test_transient_llm_errors_give_up_after_the_configured_retries(
    knowledge_settings: Path, openai_judge: ServerThread[FakeOpenAI], settings: Any
) -> None:
    write_call(knowledge_settings, "down-call", PHONE_CALL_TURNS)
    settings.AIPBX_KNOWLEDGE_MAX_RETRIES = 2
    openai_judge.server.script.status = 503
    summary = extract_knowledge_task.apply(args=["down-call"]).get()  # apply() retries at once, no countdown
    assert len(openai_judge.server.requests) == 3
    assert summary["status"] == "failed" and "gave up after 3 attempts" in summary["reason"]
    assert "HTTP 503" in summary["reason"] and ExtractionRun.objects.get().error == "JudgeUnavailable"
    assert not KnowledgeItem.objects.exists()


def test_missing_api_key_is_a_clear_failure(knowledge_settings: Path, settings: Any) -> None:
    write_call(knowledge_settings, "nokey-call", PHONE_CALL_TURNS)
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV = "openai", {}
    summary = run_extraction("nokey-call")
    assert summary["status"] == "failed" and "OPENAI_API_KEY must be set" in summary["reason"]


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    for retries in range(12):
        ceiling = min(600.0, 2.0 * 2**retries)
        delays = [retry_delay(retries, 2.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len({retry_delay(3, 2.0) for _ in range(20)}) > 1  # jittered


@pytest.mark.slow
def test_worker_retries_transient_llm_errors_with_backoff(
    knowledge_settings: Path, tmp_path: Path, openai_judge: ServerThread[FakeOpenAI]
) -> None:
    # given: the judge answers 503, then 429, then the JSON
    write_call(knowledge_settings, "flaky-call", PHONE_CALL_TURNS)
    openai_judge.server.script.statuses = [503, 429]
    queue = f"aipbx-kbllm-{uuid.uuid4().hex[:10]}"  # among the session Redis user's keys (aipbx*)
    log_path = tmp_path / "worker.log"
    worker = spawn_worker(
        queue,
        knowledge_settings,
        log_path,
        AIPBX_LLM="openai",
        OPENAI_API_KEY="sk-test",
        AIPBX_OPENAI_BASE_URL=openai_judge.server.api_url,
        AIPBX_KNOWLEDGE_RETRY_BACKOFF_S="0.2",
    )
    try:
        # when
        summary = extract_knowledge_task.apply_async(["flaky-call"], queue=queue).get(timeout=25)
    finally:
        stop_worker(worker)
    # then: two retries by the real worker (sent back through the broker), then done
    assert summary["status"] == "done" and summary["items_created"] == 2, log_path.read_text()
    assert len(openai_judge.server.requests) == 3
    assert KnowledgeItem.objects.count() == 2
