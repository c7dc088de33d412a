"""PII masking where issue 7 wires it: knowledge extraction from a call, and HITL answers saved as knowledge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.actions import reset_retriever
from knowledge.extraction import LlmJudge
from knowledge.models import ExtractionRun, KnowledgeItem
from knowledge.tasks import run_extraction
from tests.web.calls_factory import event, make_user
from webconsole.calls.actions import do_set_presence
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Presence
from webconsole.hitl import actions

pytestmark = pytest.mark.django_db(transaction=True)

# A phone call where the owner (callee) says numbers that must never reach a model or the knowledge base.
TURNS = [
    {"t": 0.0, "speaker": "caller", "text": "Hello Jiyoung, it's about the invoice."},
    {
        "t": 5.0,
        "speaker": "callee",
        "text": "Please call me back tomorrow at 010-9876-5432 about the invoice. "
        "My card number is 4111 1111 1111 1111, please charge the deposit "
        "on Monday.",
    },
    {"t": 9.0, "speaker": "callee", "text": "제 번호는 공일공 일이삼사 오육칠팔이에요, 내일 오전에 전화 주세요."},
]
SECRETS = ("9876", "4111", "1111 1111", "일이삼사", "1234")


@pytest.fixture(autouse=True)
def memory_knowledge(settings: Any, tmp_path: Path) -> Iterator[Path]:
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"privmask{uuid.uuid4().hex[:8]}"
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE = 0.7
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV, settings.AIPBX_KNOWLEDGE_JUDGE = "local", {}, "auto"
    reset_retriever()
    yield tmp_path
    reset_retriever()


def write_call(root: Path, call_id: str, turns: list[dict] = TURNS) -> None:
    """The finished call as the stack leaves it: stored by the console's consumer (what the worker reads)."""
    from tests.knowledge_app.conftest import write_call as finished_call

    finished_call(root, call_id, turns)


def test_a_transcript_with_a_phone_and_a_card_number_gives_knowledge_without_them(memory_knowledge: Path) -> None:
    # given
    write_call(memory_knowledge, "pii-call")
    # when (the offline rule judge, as configured by default)
    summary = run_extraction("pii-call")
    # then
    items = list(KnowledgeItem.objects.all())
    assert summary["status"] == "done" and len(items) >= 2
    stored = " ".join(i.text + " " + " ".join(i.keywords) for i in items)
    assert "[phone …5432]" in stored and "[card]" in stored and "[phone …5678]" in stored
    for secret in SECRETS:
        assert secret not in stored


def test_an_ai_calls_notes_keep_the_callers_message_without_the_numbers(memory_knowledge: Path) -> None:
    # given the same words said by a caller to the AI: they are notes, not the owner's knowledge
    said_to_ai = [
        {"t": 0.0, "speaker": "ai", "text": "Hello, this is the AI assistant of Jiyoung Lee."},
        *({**turn, "speaker": "caller"} for turn in TURNS[1:]),
    ]
    write_call(memory_knowledge, "pii-notes", said_to_ai)
    # when
    run_extraction("pii-notes")
    # then
    notes = " ".join(ExtractionRun.objects.get(call_id="pii-notes").notes)
    assert not KnowledgeItem.objects.exists()
    assert "[phone …5432]" in notes and "[card]" in notes
    for secret in SECRETS:
        assert secret not in notes


class RecordingModel:
    """A language model that records its prompt and echoes a number back, as a careless model might."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def stream(self, messages: Any, *, max_tokens: int = 0, temperature: float = 0.0) -> Any:
        self.prompts.append(messages[-1].content)
        yield json.dumps(
            {
                "is_useful": True,
                "confidence": 0.9,
                "reason": "callback",
                "extracted_info": [
                    {
                        "text": "Call back at 010-9876-5432; card 4111-1111-1111-1111.",
                        "category": "지시",
                        "keywords": ["010-9876-5432"],
                    }
                ],
            }
        )


def test_the_llm_judge_is_sent_no_numbers_and_its_echo_is_masked_before_storing(memory_knowledge: Path) -> None:
    write_call(memory_knowledge, "pii-llm")
    model = RecordingModel()
    run_extraction("pii-llm", judge=LlmJudge(model))
    [prompt] = model.prompts
    for secret in SECRETS:
        assert secret not in prompt
    item = KnowledgeItem.objects.get()
    assert item.text == "Call back at [phone …5432]; card [card]." and item.keywords == ["[phone …5432]"]


def test_a_hitl_answer_saved_as_knowledge_has_the_callers_number_masked(settings: Any) -> None:
    settings.AIPBX_INSTANCE = f"testprivmask{uuid.uuid4().hex[:8]}"
    kim = make_user("kim", extensions=("1002",))
    do_set_presence(kim.operator, Presence.AVAILABLE)  # on duty: the request is queued, not answered "away"
    apply_event(
        event("call.started", "pii-hitl", caller="01098765432", callee="1002", start="2026-11-25T01:00:00+00:00")
    )
    apply_event(event("call.answered", "pii-hitl", answered_by="ai", ai=True))
    apply_event(
        event(
            "hitl.requested",
            "pii-hitl",
            request_id="pii-r1",
            reason="low_confidence",
            question="Can you call me at 010-9876-5432 about order 7?",
            caller="01098765432",
            callee="1002",
            language="en",
        )
    )
    actions.do_answer("pii-r1", kim, "Tomorrow 2 pm, call 02-555-1234")
    item = actions.do_save_to_knowledge("pii-r1", kim)
    assert "9876" not in item.text and "[phone …5432]" in item.text and "order 7" in item.text
    assert "02-555-1234" in item.text  # the operator's own answer is kept as typed
