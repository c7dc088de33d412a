"""Per-call knowledge extraction: pending items with provenance, idempotency, bad inputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.actions import do_set_status, get_retriever
from knowledge.extraction import LlmJudge, RuleJudge, Turn, parse_judgement
from knowledge.models import Category, ExtractionRun, KnowledgeItem, Source, Status
from knowledge.tasks import MAX_TRANSCRIPT_BYTES, extract_knowledge_task, run_extraction
from tests.knowledge_app.conftest import AI_CALL_TURNS, write_call

pytestmark = pytest.mark.django_db(transaction=True)


class FakeLanguageModel:
    """Speaks ``ariapp.providers.base.LanguageModel``: streams a canned answer in small deltas."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    async def stream(self, messages: list[Any], *, max_tokens: int = 150,
                     temperature: float = 0.5) -> AsyncIterator[str]:
        self.prompts.append(messages[-1].content)
        for start in range(0, len(self.answer), 7):
            await asyncio.sleep(0)
            yield self.answer[start : start + 7]


def test_ai_call_gives_pending_items_with_provenance(knowledge_settings: Path) -> None:
    # given
    write_call(knowledge_settings, "call-1", AI_CALL_TURNS)
    # when
    summary = extract_knowledge_task.apply(args=["call-1"]).get()
    # then
    assert summary["status"] == "done" and summary["items_created"] == 2
    items = list(KnowledgeItem.objects.order_by("pk"))
    assert [i.text for i in items] == [
        "The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2.",
        "Please call me back at [phone …5678].",  # masked before it reached the judge (issue 7)
    ]
    delivery, callback = items
    assert {i.status for i in items} == {Status.PENDING} and {i.source for i in items} == {Source.CALL}
    assert delivery.owner == "1002" and delivery.source_call_id == "call-1"
    assert delivery.source_speaker == "caller" and delivery.source_span == {"start_s": 6.5, "end_s": 14.0}
    assert delivery.category == Category.APPOINTMENT and callback.category == Category.INSTRUCTION
    assert delivery.confidence >= 0.7 and "tomorrow" in delivery.keywords
    # pending items are not searchable; approving one makes it so
    assert get_retriever().store.count("1002") == 0
    do_set_status(delivery.pk, Status.APPROVED)
    assert asyncio.run(get_retriever().search("1002", "When does the delivery come?")).passages[0].id == str(
        delivery.pk)
    # re-running the task creates nothing new
    assert run_extraction("call-1")["items_created"] == 2
    assert KnowledgeItem.objects.count() == 2 and ExtractionRun.objects.count() == 1


def test_korean_callee_utterances_are_proposed(knowledge_settings: Path) -> None:
    turns = [
        {"t": 0.0, "speaker": "caller", "text": "안녕하세요 회의 언제예요?"},
        {"t": 2.0, "speaker": "callee",
         "text": "다음 주 월요일 오전 10시에 3층 회의실에서 팀 회의가 있어요. 네 감사합니다."},
    ]
    write_call(knowledge_settings, "call-ko", turns)
    assert run_extraction("call-ko")["status"] == "done"
    item = KnowledgeItem.objects.get()
    assert item.text == "다음 주 월요일 오전 10시에 3층 회의실에서 팀 회의가 있어요."
    assert item.source_speaker == "callee" and item.category == Category.APPOINTMENT


def test_run_killed_midway_reruns_without_duplicates(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-2", AI_CALL_TURNS)
    ExtractionRun.objects.create(call_id="call-2")  # a worker died after creating its run row
    assert run_extraction("call-2")["items_created"] == 2
    assert KnowledgeItem.objects.count() == 2


def test_small_talk_is_skipped(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-3", [{"t": 0, "speaker": "callee", "text": "Hello there, how are you doing?"}])
    summary = run_extraction("call-3")
    assert summary["status"] == "skipped" and not KnowledgeItem.objects.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "transcript missing"),
        ({"call": {"callee": "1002"}, "turns": [{"t": 0, "speaker": "callee", "text": "  "}]}, "transcript is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ({"call": {"callee": "1002"}, "turns": [{"t": 0, "speaker": "callee", "text": "x" * MAX_TRANSCRIPT_BYTES}]},
         "too large"),
        ({"call": {"callee": "9999"}, "turns": AI_CALL_TURNS}, "unknown owner '9999'"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_transcripts_fail_the_run_and_write_nothing(knowledge_settings: Path, content: Any, reason: str) -> None:
    folder = knowledge_settings / "bad-call"
    folder.mkdir(parents=True)
    if isinstance(content, bytes):
        (folder / "metadata.json").write_bytes(content)
    elif content is not None:
        (folder / "metadata.json").write_text(json.dumps(content), encoding="utf-8")
    summary = run_extraction("bad-call")
    assert summary["status"] == "failed" and reason in summary["reason"]
    assert not KnowledgeItem.objects.exists()
    assert ExtractionRun.objects.get().status == "failed"


def test_malformed_llm_json_fails_the_run(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-llm", AI_CALL_TURNS)
    llm = FakeLanguageModel('Sure! {"is_useful": true, "confidence": 0.9, "extracted_info": [')
    summary = run_extraction("call-llm", judge=LlmJudge(llm))
    assert summary["status"] == "failed" and "not valid JSON" in summary["reason"]
    assert not KnowledgeItem.objects.exists()
    assert "통화 내용:" in llm.prompts[0] and "[caller] Hi, this is Alex" in llm.prompts[0]


def test_llm_judgement_is_stored_as_pending(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-llm2", AI_CALL_TURNS)
    answer = {"is_useful": True, "confidence": 0.85, "reason": "delivery time",
              "extracted_info": [{"text": "Acme delivers tomorrow at 9 a.m. to the lobby of building 2.",
                                  "category": "약속", "keywords": ["delivery", "Acme"]}]}
    summary = run_extraction("call-llm2", judge=LlmJudge(FakeLanguageModel("```json\n" + json.dumps(answer) + "\n```")))
    assert summary == {"call_id": "call-llm2", "status": "done", "items_created": 1, "reason": "delivery time"}
    item = KnowledgeItem.objects.get()
    assert (item.category, item.confidence, item.source_speaker) == (Category.APPOINTMENT, 0.85, "caller")


@pytest.mark.parametrize("answer", ['{"is_useful": "yes", "confidence": 0.5}', '{"is_useful": true, "confidence": 2}',
                                    '[1, 2]', '{"is_useful": true, "confidence": 0.9, "extracted_info": [{"x": 1}]}'])
def test_parse_judgement_is_strict(answer: str) -> None:
    from knowledge.extraction import ExtractionError

    with pytest.raises(ExtractionError):
        parse_judgement(answer)


def test_rule_judge_scores_features() -> None:
    judge = RuleJudge(0.7)
    verdict = judge.judge([Turn("callee", "Thanks a lot. Room 301 is on the third floor. Bye now.", 0.0, 3.0)])
    assert [e["text"] for e in verdict["extracted_info"]] == ["Room 301 is on the third floor."]
    assert verdict["is_useful"] and verdict["extracted_info"][0]["category"] == "정보"


def test_rule_judge_ignores_questions_and_the_ai() -> None:
    turns = [Turn("ai", "The meeting is at 10 a.m. in room 3.", 0.0, 1.0),
             Turn("caller", "Is the meeting at 10 a.m. in room 3? 회의가 몇 시에 3층에서 있나요", 1.0, 2.0)]
    assert RuleJudge(0.7).judge(turns)["extracted_info"] == []


def test_a_sealed_call_is_read_with_the_master_keys(knowledge_settings: Path, settings: Any) -> None:
    from ariapp import sealing

    # given the call's metadata sealed at rest, as the ARI app leaves it
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    sealing.seal_directory(write_call(knowledge_settings, "sealed-call", AI_CALL_TURNS).parent, keys)
    assert not (knowledge_settings / "sealed-call" / "metadata.json").exists()
    # when the worker has the key, extraction works as on a clear file
    settings.AIPBX_RECORDINGS_KEYRING = keys
    assert run_extraction("sealed-call")["items_created"] == 2
    # and without it the run fails with the reason, writing nothing
    settings.AIPBX_RECORDINGS_KEYRING = None
    write_call(knowledge_settings, "sealed-2", AI_CALL_TURNS)
    sealing.seal_directory(knowledge_settings / "sealed-2", keys)
    summary = run_extraction("sealed-2")
    assert summary["status"] == "failed" and "cannot be decrypted" in summary["reason"]
