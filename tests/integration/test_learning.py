"""Learning from every call, end to end over real SIP through Asterisk with real audio.

1001 calls 1002; 1002 answers and states a new fact; the caller states one of their own. The call is
written down per speaker (live, through ARI snoop channels), the worker learns what 1002's owner said
— and only that — and the next caller who reaches 1002's AI while 1002 is away hears it. Before the
phone rang, the caller heard that the call is recorded.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Page, expect

from aipbx.queues import worker_queues
from ariapp.calls.transcriber import DRAIN_TIMEOUT_S
from knowledge.models import ExtractionRun, KnowledgeItem, Status
from tests.browser.conftest import login
from tests.integration.audio_checks import Recordings, ask, speech, transcribe
from tests.integration.test_telephony import cdr_baseline, new_cdr
from tests.integration.threaded import InThread
from tests.knowledge_app.conftest import spawn_worker, stop_worker, wait_until_finished
from webconsole.calls.models import Call

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

CALLER_SAYS = "Hi Jiyoung, this is Alex. Our office moved to building seven last Monday."
CALLEE_SAYS = "Thanks Alex. From next week we open on Saturdays from ten to two."
QUESTION = "Are you open on Saturdays?"
LEARNED_WITHIN_S = 90.0  # transcript (live), then a Celery task: seconds of work on a loaded 2-core box


@pytest.fixture
def learning_worker(pbx, ariapp, console, knowledge_store, transactional_db, tmp_path: Path) -> Iterator[None]:
    """A Celery worker on the instance's queue, with its recordings, keys and knowledge store.

    The worker reads the call from PostgreSQL, so the console's event consumer runs too (as under
    ``make up``)."""
    from webconsole.celery import app

    queue = pbx.cfg.extra_env["AIPBX_CELERY_QUEUE"]
    # earlier tests' calls are not this test's
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*worker_queues(queue))
    node = f"pytest-learn-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path / "worker.log"
    env = {**pbx.cfg.process_env(), "AIPBX_KNOWLEDGE_STORE": "chroma"}
    proc = spawn_worker(queue, pbx.cfg.recordings_dir, log, node, **env)
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(destination=[node], timeout=0.5):
            assert proc.poll() is None and time.monotonic() < deadline, f"the worker did not start:\n{log.read_text()}"
        yield
    finally:
        stop_worker(proc)
        KnowledgeItem.objects.filter(owner="1002").delete()  # later tests call 1002's AI too


async def conversation(phones, hold: threading.Event | None = None) -> dict:
    """1001 calls 1002, hears the recording notice, 1002 answers; both speak; 1001 hangs up — when
    ``hold`` is given, only once it is set (at most a minute later), so that a watcher can see the call
    while it goes on."""
    async with phones("1001") as alice, phones("1002") as jiyoung:
        outgoing = await alice.dial("1002")
        incoming = await jiyoung.next_incoming(timeout=15)
        callee = await incoming.answer()
        await asyncio.wait_for(outgoing.answered(), 5)
        notice = await transcribe(outgoing.early_audio())
        await asyncio.sleep(0.5)
        await outgoing.play_and_wait(await speech(CALLER_SAYS))
        await asyncio.sleep(0.8)
        await callee.play_and_wait(await speech(CALLEE_SAYS))
        await asyncio.sleep(1.2)
        held = hold is not None and await asyncio.to_thread(hold.wait, 60)
        await outgoing.hangup()
        return {"notice": notice, "held_until_seen": held}


def test_what_the_callee_says_on_a_call_is_what_the_ai_tells_the_next_caller(
    pbx, ariapp, phones, learning_worker
) -> None:
    # given: 1001 calls 1002, who answers and says a new fact; the caller says one of their own
    before = asyncio.run(cdr_baseline(pbx, ariapp))
    heard = asyncio.run(conversation(phones))
    # the call ends once its live transcript has drained (bounded by DRAIN_TIMEOUT_S on a busy box)
    (line,) = new_cdr(pbx, before, timeout=DRAIN_TIMEOUT_S + 20)
    call_id = line["call_id"]
    # then: the caller was told the call is recorded before the phone rang
    assert "record" in heard["notice"], heard
    # and the call was written down per speaker, live, with times
    turns = Recordings(pbx.cfg).metadata(call_id)["turns"]
    assert [t["speaker"] for t in turns] == ["caller", "callee"], turns
    assert "building" in turns[0]["text"].lower() and "saturday" in turns[1]["text"].lower()
    assert 0 <= turns[0]["t"] < turns[0]["end"] < turns[1]["t"] < turns[1]["end"] <= line["billsec"] + 0.5
    # when the worker has read the call, the fact is 1002's knowledge with provenance to the moment
    run = wait_until_finished(call_id, LEARNED_WITHIN_S)
    assert run is not None and run.status == ExtractionRun.RunStatus.DONE, run and run.reason
    # (from the turns the console stored, which are the ones the ARI app's file says)
    stored = Call.objects.get(call_id=call_id).turns.order_by("t").values_list("speaker", "t", "end", "text")
    assert list(stored) == [(t["speaker"], t["t"], t["end"], t["text"]) for t in turns]
    learned = KnowledgeItem.objects.filter(owner="1002", source_call_id=call_id)
    (fact,) = learned
    assert "saturday" in fact.text.lower() and fact.source_speaker == "callee"
    assert fact.status == Status.APPROVED, (fact.text, fact.confidence)  # sure enough to publish by default
    assert fact.source_span["start_s"] == turns[1]["t"]
    # and the caller's words are not 1002's knowledge
    assert not KnowledgeItem.objects.filter(owner="1002", text__icontains="building").exists()

    # when: 1003 calls 1002, who is away (not registered): the AI answers and is asked about it
    answer = asyncio.run(ask(phones, "1002", QUESTION, caller="1003"))
    # then: the caller hears what 1002 said on the earlier call
    assert "saturday" in answer and ("ten" in answer or "10" in answer), answer


def test_a_phone_calls_page_shows_both_speakers_live(
    console, phones, page: Page, transactional_db, django_user_model
) -> None:
    password = uuid.uuid4().hex
    django_user_model.objects.create_superuser("watcher", password=password)
    login(page, console.server, "watcher", password)
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    known = set(page.locator("#active-calls tbody tr").evaluate_all("rows => rows.map(r => r.dataset.callId)"))
    # when 1001 and 1002 talk
    seen = threading.Event()
    call = InThread(lambda: conversation(phones, hold=seen))
    call.start()
    row = page.locator("#active-calls tbody tr").filter(has_text="1002").last
    expect(row).to_be_visible(timeout=30_000)
    assert row.get_attribute("data-call-id") not in known
    row.locator("a").click()
    # then the call page shows each party's words, labelled, while the call goes on
    expect(page.locator("#transcript li.turn.caller")).to_contain_text("building", timeout=30_000, ignore_case=True)
    expect(page.locator("#transcript li.turn.callee")).to_contain_text("saturday", timeout=30_000, ignore_case=True)
    expect(page.locator("#transcript li.turn.callee .who")).to_have_text("callee")
    # (the phones hang up only now: the lines above were shown while the call was still up)
    assert page.locator("body").get_attribute("data-call-ended") != "1"
    seen.set()
    heard = call.result()
    assert heard["notice"] and heard["held_until_seen"], heard
    # and after the hang-up the page says how it was transcribed, with the recording to play from a line
    expect(page.locator("#transcript-source")).to_have_attribute("data-source", "live", timeout=20_000)
    expect(page.locator('audio[data-recording="mixed"]')).to_be_visible()
    page.locator("#transcript li.turn.callee a.at").first.click()
    expect(page.locator("#transcript li.turn.callee").first).to_have_class(re.compile(r"\bmoment\b"))
