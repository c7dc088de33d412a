"""Per-call knowledge extraction: pending items with provenance, idempotency, bad inputs, and the
transcript read from PostgreSQL (as the console stored it), never from the ARI app's files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from contract import CallAnswered, CallEnded, CallStarted, Transcript, TurnPlayed
from knowledge.actions import get_retriever
from knowledge.extraction import LlmJudge, RuleJudge, Turn, parse_judgement
from knowledge.models import Category, ExtractionRun, KnowledgeItem, LearningPolicy, Source, Status
from knowledge.tasks import MAX_TRANSCRIPT_BYTES, _turns, extract_knowledge_task, load_turns, run_extraction
from knowledge.transcripts import CALL_WAIT_ATTEMPTS, CallNotFinished
from tests.knowledge_app.conftest import AI_CALL_TURNS, PHONE_CALL_TURNS, call_events, publish, write_call
from webconsole.calls.models import Turn as StoredTurn

pytestmark = pytest.mark.django_db(transaction=True)


class FakeLanguageModel:
    """Speaks ``aipbx.providers.base.LanguageModel``: streams a canned answer in small deltas."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    async def stream(
        self, messages: list[Any], *, max_tokens: int = 150, temperature: float = 0.5
    ) -> AsyncIterator[str]:
        self.prompts.append(messages[-1].content)
        for start in range(0, len(self.answer), 7):
            await asyncio.sleep(0)
            yield self.answer[start : start + 7]


def test_the_owners_sure_facts_are_published_with_provenance_and_the_callers_words_are_not(
    knowledge_settings: Path,
) -> None:
    # given a phone call where 1002's owner states facts and the caller states their own
    write_call(knowledge_settings, "call-1", PHONE_CALL_TURNS)
    # when
    summary = extract_knowledge_task.apply(args=["call-1"]).get()
    # then only what the callee said is 1002's knowledge
    assert summary["status"] == "done" and summary["items_created"] == 2
    items = list(KnowledgeItem.objects.order_by("pk"))
    assert [i.text for i in items] == [
        "The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2.",
        "Please call me back at [phone …5678].",  # masked before it reached the judge (issue 7)
    ]
    assert not KnowledgeItem.objects.filter(text__icontains="building 7").exists()
    delivery, callback = items
    assert {i.source for i in items} == {Source.CALL} and {i.source_speaker for i in items} == {"callee"}
    assert delivery.owner == "1002" and delivery.source_call_id == "call-1"
    assert delivery.source_span == {"start_s": 4.4, "end_s": 12.0}  # where in the call the owner said it
    assert delivery.category == Category.APPOINTMENT and callback.category == Category.INSTRUCTION
    assert "tomorrow" in delivery.keywords
    # sure facts (confidence >= 0.8, the default policy) are published at once: callers can be told
    assert delivery.confidence >= 0.8 and delivery.status == Status.APPROVED
    assert asyncio.run(get_retriever().search("1002", "When does the delivery come?")).passages[0].id == str(
        delivery.pk
    )
    # re-running the task creates nothing new
    assert run_extraction("call-1")["items_created"] == 2
    assert KnowledgeItem.objects.count() == 2 and ExtractionRun.objects.count() == 1


def test_less_sure_facts_wait_for_review_and_the_policy_decides(knowledge_settings: Path) -> None:
    turns = [{"t": 0.0, "end": 3.0, "speaker": "callee", "text": "Room 301 is on the third floor."}]
    write_call(knowledge_settings, "unsure", turns)
    assert run_extraction("unsure")["items_created"] == 1
    room = KnowledgeItem.objects.get()
    assert 0.7 <= room.confidence < 0.8 and room.status == Status.PENDING
    assert get_retriever().store.count("1002") == 0  # pending items are not searchable
    # an owner who publishes nothing unseen: even a sure fact waits
    LearningPolicy.objects.create(owner="1002", auto_publish=False)
    write_call(knowledge_settings, "reviewed", PHONE_CALL_TURNS)
    run_extraction("reviewed")
    assert set(KnowledgeItem.objects.filter(source_call_id="reviewed").values_list("status", flat=True)) == {
        Status.PENDING
    }


def test_an_owner_who_turned_learning_off_teaches_nothing(knowledge_settings: Path) -> None:
    LearningPolicy.objects.create(owner="1002", learning=False)
    write_call(knowledge_settings, "off", PHONE_CALL_TURNS)
    summary = run_extraction("off")
    assert summary["status"] == "skipped" and "learning is off" in summary["reason"]
    assert not KnowledgeItem.objects.exists()


def test_an_ai_call_leaves_the_callers_message_as_notes_never_as_facts(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "ai-call", AI_CALL_TURNS)
    summary = run_extraction("ai-call")
    assert summary["status"] == "skipped" and summary["items_created"] == 0
    assert not KnowledgeItem.objects.exists()
    assert ExtractionRun.objects.get(call_id="ai-call").notes == [
        "The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2.",
        "Please call me back at [phone …5678].",
    ]


def test_korean_callee_utterances_are_proposed(knowledge_settings: Path) -> None:
    turns = [
        {"t": 0.0, "speaker": "caller", "text": "안녕하세요 회의 언제예요?"},
        {
            "t": 2.0,
            "speaker": "callee",
            "text": "다음 주 월요일 오전 10시에 3층 회의실에서 팀 회의가 있어요. 네 감사합니다.",
        },
    ]
    write_call(knowledge_settings, "call-ko", turns)
    assert run_extraction("call-ko")["status"] == "done"
    item = KnowledgeItem.objects.get()
    assert item.text == "다음 주 월요일 오전 10시에 3층 회의실에서 팀 회의가 있어요."
    assert item.source_speaker == "callee" and item.category == Category.APPOINTMENT


def test_run_killed_midway_reruns_without_duplicates(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-2", PHONE_CALL_TURNS)
    ExtractionRun.objects.create(call_id="call-2")  # a worker died after creating its run row
    assert run_extraction("call-2")["items_created"] == 2
    assert KnowledgeItem.objects.count() == 2


def test_small_talk_is_skipped(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-3", [{"t": 0, "speaker": "callee", "text": "Hello there, how are you doing?"}])
    summary = run_extraction("call-3")
    assert summary["status"] == "skipped" and not KnowledgeItem.objects.exists()


@pytest.mark.parametrize(
    ("turns", "callee", "reason"),
    [
        ([{"t": 0, "speaker": "callee", "text": "  "}], "1002", "transcript is empty"),
        ([{"t": 0, "speaker": "callee", "text": "x" * (MAX_TRANSCRIPT_BYTES + 1)}], "1002", "too large"),
        (AI_CALL_TURNS, "9999", "unknown owner '9999'"),
    ],
)
def test_bad_transcripts_fail_the_run_and_write_nothing(
    knowledge_settings: Path, turns: list[dict[str, Any]], callee: str, reason: str
) -> None:
    write_call(knowledge_settings, "bad-call", turns, callee=callee)
    summary = run_extraction("bad-call")
    assert summary["status"] == "failed" and reason in summary["reason"]
    assert not KnowledgeItem.objects.exists()
    assert ExtractionRun.objects.get().status == "failed"


def test_a_transcript_that_lost_turns_on_the_way_is_not_learned_from(knowledge_settings: Path) -> None:
    # given a call whose end says it had three turns, of which the console stored two (an event lost)
    write_call(knowledge_settings, "lossy", PHONE_CALL_TURNS)
    StoredTurn.objects.filter(call__call_id="lossy", speaker="caller").first().delete()
    # when
    summary = run_extraction("lossy")
    # then
    assert summary["status"] == "failed" and "transcript incomplete: 2 of the call's 3 turns" in summary["reason"]
    assert not KnowledgeItem.objects.exists()


def test_the_task_waits_for_the_console_to_store_the_calls_end(knowledge_settings: Path) -> None:
    # given a call whose events the console has applied up to, not including, its end
    *before_the_end, end = call_events("late", PHONE_CALL_TURNS)
    publish("late", *before_the_end)
    # when the task runs now, it waits (a retryable error, nothing recorded but the open run)
    with pytest.raises(CallNotFinished, match="has not stored the end of call late"):
        run_extraction("late")
    assert ExtractionRun.objects.get(call_id="late").status == ExtractionRun.RunStatus.RUNNING
    # then once the end is stored, the same run learns from the whole call
    publish("late", end)
    assert run_extraction("late")["items_created"] == 2


def test_a_call_whose_end_never_arrives_fails_with_the_reason_after_bounded_waits(knowledge_settings: Path) -> None:
    # given a call the console never heard the end of (eagerly, the task's waits run at once)
    publish("lost-end", CallStarted(caller="1001", callee="1002", start="2026-11-25T01:00:00.000+00:00"))
    # when
    summary = extract_knowledge_task.apply(args=["lost-end"]).get()
    # then
    assert summary["status"] == "failed"
    assert summary["reason"].startswith(f"gave up after {CALL_WAIT_ATTEMPTS + 1} attempts: the console has not")
    assert "consume_events" in summary["reason"]


def test_malformed_llm_json_fails_the_run(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-llm", PHONE_CALL_TURNS)
    llm = FakeLanguageModel('Sure! {"is_useful": true, "confidence": 0.9, "extracted_info": [')
    summary = run_extraction("call-llm", judge=LlmJudge(llm))
    assert summary["status"] == "failed" and "not valid JSON" in summary["reason"]
    assert not KnowledgeItem.objects.exists()
    # the model reads the whole call, labelled by speaker, and is told whose words are knowledge
    assert "통화 내용:" in llm.prompts[0] and "[caller] Hi, this is Alex" in llm.prompts[0]
    assert "[callee] Thanks Alex." in llm.prompts[0] and "only facts the callee stated" in llm.prompts[0]


def test_llm_judgement_keeps_only_what_the_owner_said(knowledge_settings: Path) -> None:
    write_call(knowledge_settings, "call-llm2", PHONE_CALL_TURNS)
    answer = {
        "is_useful": True,
        "confidence": 0.85,
        "reason": "delivery time",
        "extracted_info": [
            {
                "text": "The delivery arrives tomorrow at 9 a.m. at the lobby of building 2.",
                "category": "약속",
                "keywords": ["delivery"],
                "speaker": "callee",
            },
            # the model claims the caller's news for the owner: its words are the caller's
            {"text": "Acme's office moves to building 7 next Monday.", "category": "정보", "speaker": "callee"},
            {"text": "Alex is from Acme.", "category": "기타", "speaker": "caller"},
        ],
        "call_notes": [],
    }
    summary = run_extraction("call-llm2", judge=LlmJudge(FakeLanguageModel("```json\n" + json.dumps(answer) + "\n```")))
    assert summary == {"call_id": "call-llm2", "status": "done", "items_created": 1, "reason": "delivery time"}
    item = KnowledgeItem.objects.get()
    assert (item.category, item.confidence, item.source_speaker) == (Category.APPOINTMENT, 0.85, "callee")
    assert item.status == Status.APPROVED  # 0.85 >= the default publishing threshold


@pytest.mark.parametrize(
    "answer",
    [
        '{"is_useful": "yes", "confidence": 0.5}',
        '{"is_useful": true, "confidence": 2}',
        "[1, 2]",
        '{"is_useful": true, "confidence": 0.9, "extracted_info": [{"x": 1}]}',
    ],
)
def test_parse_judgement_is_strict(answer: str) -> None:
    from knowledge.extraction import ExtractionError

    with pytest.raises(ExtractionError):
        parse_judgement(answer)


def test_rule_judge_scores_features() -> None:
    judge = RuleJudge(0.7)
    verdict = judge.judge([Turn("callee", "Thanks a lot. Room 301 is on the third floor. Bye now.", 0.0, 3.0)])
    assert [e["text"] for e in verdict["extracted_info"]] == ["Room 301 is on the third floor."]
    assert verdict["is_useful"] and verdict["extracted_info"][0]["category"] == "정보"


def test_rule_judge_drops_a_spoken_preamble_but_keeps_facts_before_a_comma() -> None:
    judge = RuleJudge(0.7)
    said = "Good question, from next week we open on Saturdays from ten to two. On Monday, we close at 5 pm."
    facts = [e["text"] for e in judge.judge([Turn("callee", said, 0.0, 5.0)])["extracted_info"]]
    assert facts == ["From next week we open on Saturdays from ten to two.", "On Monday, we close at 5 pm."]
    # as the recogniser writes it, without the comma
    said = "Good question from next week we open on Saturdays from 10 to 2."
    facts = [e["text"] for e in judge.judge([Turn("callee", said, 0.0, 5.0)])["extracted_info"]]
    assert facts == ["From next week we open on Saturdays from 10 to 2."]


def test_rule_judge_ignores_questions_and_the_ai() -> None:
    turns = [
        Turn("ai", "The meeting is at 10 a.m. in room 3.", 0.0, 1.0),
        Turn("caller", "Is the meeting at 10 a.m. in room 3? 회의가 몇 시에 3층에서 있나요", 1.0, 2.0),
    ]
    assert RuleJudge(0.7).judge(turns)["extracted_info"] == []


def learned(call_id: str) -> list[tuple[Any, ...]]:
    return list(
        KnowledgeItem.objects.filter(source_call_id=call_id)
        .order_by("pk")
        .values_list("owner", "text", "category", "keywords", "confidence", "status", "source_speaker", "source_span")
    )


def file_turns(metadata: Path) -> list[Turn]:
    """The turns as the worker read them from the ARI app's ``metadata.json`` before it read PostgreSQL."""
    meta = json.loads(metadata.read_text(encoding="utf-8"))
    return _turns(meta["turns"], meta["call"]["billsec"])


def test_the_worker_reads_postgresql_not_the_ari_apps_files_and_learns_the_same(
    knowledge_settings: Path, settings: Any
) -> None:
    from aipbx import sealing

    # given a call as the stack leaves it, whose metadata.json is then deleted, the rest of its folder
    # sealed with keys the worker does not have
    metadata = write_call(knowledge_settings, "no-file", PHONE_CALL_TURNS)
    before = file_turns(metadata)
    metadata.unlink()
    (metadata.parent / "caller.wav").write_bytes(b"RIFF" + bytes(40))
    sealing.seal_directory(metadata.parent, sealing.Keyring.parse(sealing.new_key_spec("k1")))
    settings.AIPBX_RECORDINGS_KEYRING = None
    assert not sealing.exists(metadata.parent, "metadata.json")
    # when
    summary = run_extraction("no-file")
    # then it read the very turns the file held, and learned what the file-reading worker learned from
    # this call (texts, categories, published or pending, speaker, moment: as the first test here asserts)
    assert load_turns("no-file") == ("1002", before)
    assert summary["status"] == "done" and summary["items_created"] == 2
    where = {"start_s": 4.4, "end_s": 12.0}  # the owner's turn, as the file had it
    assert (before[1].start_s, before[1].end_s) == (4.4, 12.0)
    assert [
        (text, category, status, speaker, span) for _, text, category, _, _, status, speaker, span in learned("no-file")
    ] == [
        (
            "The delivery will arrive tomorrow at 9 a.m. at the lobby of building 2.",
            Category.APPOINTMENT,
            Status.APPROVED,
            "callee",
            where,
        ),
        ("Please call me back at [phone …5678].", Category.INSTRUCTION, Status.PENDING, "callee", where),
    ]


def test_an_ai_call_whose_caller_went_on_talking_leaves_the_notes_its_file_did(knowledge_settings: Path) -> None:
    # given an AI call as the ARI app published it: the caller's first part was a final transcript, then
    # they went on, and both parts heard as one replaced it (the ARI app's report keeps only the whole)
    greeting, message, thanks = AI_CALL_TURNS
    first_part = "Hi, this is Alex from Acme."
    start = "2026-11-25T01:00:00.000+00:00"
    cdr = {"call_id": "went-on", "caller": "1001", "callee": "1002", "start": start, "billsec": 20.0}
    publish(
        "went-on",
        CallStarted(caller="1001", callee="1002", start=start),
        CallAnswered(answered_by="ai", ai=True),
        TurnPlayed(t=greeting["t"], speaker="ai", text=greeting["text"]),
        Transcript(speaker="caller", text=first_part, final=True, t=3.25),
        Transcript(speaker="caller", text=message["text"], final=True, t=message["t"], replaces=3.25),
        TurnPlayed(t=thanks["t"], speaker="ai", text=thanks["text"]),
        CallEnded(cdr={**cdr, "ai_handled": True}, turns=3),
    )
    metadata = write_call(knowledge_settings, "as-the-file-says", AI_CALL_TURNS)
    # when
    summary = run_extraction("went-on")
    # then the first part is no turn of the call, and the notes are those the file's transcript gives
    assert load_turns("went-on") == ("1002", file_turns(metadata))
    assert summary["status"] == "skipped"
    run_extraction("as-the-file-says")
    notes = ExtractionRun.objects.get(call_id="went-on").notes
    assert notes == ExtractionRun.objects.get(call_id="as-the-file-says").notes and len(notes) == 2


def test_an_admin_who_sets_the_policy_in_django_admin_governs_what_the_next_call_teaches(
    knowledge_settings: Path, admin_client: Any
) -> None:
    from django.urls import reverse

    # given: an administrator makes 1002 publish nothing unseen, through the admin's add form
    response = admin_client.post(
        reverse("admin:knowledge_learningpolicy_add"),
        {"owner": "1002", "learning": "on", "publish_threshold": "0.8"},  # auto_publish left unticked
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert LearningPolicy.for_owner("1002").auto_publish is False
    # when: 1002 states sure facts on a call
    write_call(knowledge_settings, "after-admin", PHONE_CALL_TURNS)
    run_extraction("after-admin")
    # then: they wait for review instead of being published
    statuses = set(KnowledgeItem.objects.filter(source_call_id="after-admin").values_list("status", flat=True))
    assert statuses == {Status.PENDING}
    # and when the administrator turns learning off in the change list, the next call teaches nothing
    policy = LearningPolicy.objects.get(owner="1002")
    response = admin_client.post(
        reverse("admin:knowledge_learningpolicy_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(policy.pk),
            "form-0-publish_threshold": "0.8",  # learning and auto_publish unticked
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    write_call(knowledge_settings, "after-off", PHONE_CALL_TURNS)
    summary = run_extraction("after-off")
    assert summary["status"] == "skipped" and "learning is off" in summary["reason"]
    assert not KnowledgeItem.objects.filter(source_call_id="after-off").exists()


def test_the_directory_is_the_consoles_an_extension_added_there_learns_and_a_policy_changed_there_holds(
    knowledge_settings: Path,
) -> None:
    from django.conf import settings

    from webconsole.calls.directory import sync_extensions
    from webconsole.calls.models import Extension

    # given the table seeded from the YAML, an extension added in the console (not in the YAML), and
    # 1002's recording set to "record" (no learning) in the console
    sync_extensions(Path(settings.AIPBX_EXTENSIONS_FILE))
    Extension.objects.create(number="1010", name="Minsu Park", language="ko-KR", recording="learn", seeded=True)
    Extension.objects.filter(number="1002").update(recording="record")
    # when calls to both end
    write_call(knowledge_settings, "to-1010", PHONE_CALL_TURNS, callee="1010")
    write_call(knowledge_settings, "to-1002", PHONE_CALL_TURNS, callee="1002")
    # then the new extension's owner learns from theirs, and 1002's does not, as the console says
    assert run_extraction("to-1010")["items_created"] == 2
    assert set(KnowledgeItem.objects.values_list("owner", flat=True)) == {"1010"}
    skipped = run_extraction("to-1002")
    assert skipped["status"] == "skipped" and "learning is off for extension 1002" in skipped["reason"]
