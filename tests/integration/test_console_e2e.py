"""The operator console end to end: a real SIP call through Asterisk, watched live in headless Chromium.

An admin logs in, sees the call appear on the dashboard while the phone talks to the AI, watches
the transcript grow on the call page, opens the recording after the call ends, then edits the
knowledge item the AI used — and the next caller hears the new text.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from knowledge.actions import do_add_item, do_delete_item, reset_retriever
from tests.browser.conftest import login
from tests.integration.audio_checks import ask
from tests.integration.threaded import InThread

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

QUESTION = "Where can visitors park their car?"
FIRST = "Visitors can park their car in basement level B2."
SECOND = "Visitors can park their car in the garden behind the library."


@pytest.fixture
def parking_item(pbx, settings, transactional_db):
    """An approved knowledge item of 1002, indexed in the instance's Chroma server (as the console does)."""
    settings.AIPBX_KNOWLEDGE_STORE = "chroma"
    settings.AIPBX_CHROMA_PORT = pbx.cfg.chroma_port
    settings.AIPBX_CHROMA_TOKEN = pbx.cfg.chroma_token
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kb{pbx.cfg.name}"
    reset_retriever()
    item = do_add_item("1002", FIRST, status="approved")[0].item
    yield item
    do_delete_item(item.pk)  # other tests call 1002 too
    reset_retriever()


def test_a_live_call_its_transcript_recording_and_a_knowledge_edit(
    console, phones, page: Page, parking_item, transactional_db, django_user_model
) -> None:
    password = uuid.uuid4().hex
    django_user_model.objects.create_superuser("supervisor", password=password)
    login(page, console.server, "supervisor", password)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    known = set(page.locator("#active-calls tbody tr").evaluate_all("rows => rows.map(r => r.dataset.callId)"))

    # when: a caller rings 1002 and the AI answers
    call = InThread(lambda: ask(phones, "1002", QUESTION))
    call.start()
    # then: the call appears on the dashboard without a reload
    row = page.locator("#active-calls tbody tr").filter(has_text="1002").last
    expect(row).to_be_visible(timeout=20_000)
    call_id = row.get_attribute("data-call-id")
    assert call_id not in known
    expect(row.locator(".state")).to_contain_text("With the AI")
    # the call page shows the caller's question and the AI's answer as they happen
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text("1001")
    expect(page.locator("#transcript li.turn.ai").first).to_be_visible(timeout=20_000)  # the greeting
    expect(page.locator("#transcript li.turn.caller")).to_contain_text("park", timeout=30_000, ignore_case=True)
    expect(page.locator("#transcript li.turn.caller .retrieved")).to_contain_text("B2")
    heard = call.result()
    assert "b2" in heard.replace(" ", "") or "basement" in heard, heard
    # after the hang-up the page reloads with the recordings
    player = page.locator('audio[data-recording="mixed"]')
    expect(player).to_be_visible(timeout=20_000)
    audio = page.request.get(console.url + player.get_attribute("src"))  # with the session cookie
    assert audio.status == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.body()[:4] == b"RIFF" and len(audio.body()) > 8000 * 2 * 3  # seconds of 8 kHz audio

    # when: the supervisor edits the item in the knowledge manager
    page.goto(f"{console.url}/knowledge/{parking_item.pk}/edit/")
    page.locator('textarea[name="text"]').fill(SECOND)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("body")).to_contain_text(SECOND)
    # then: the next caller hears the new text
    call = InThread(lambda: ask(phones, "1002", QUESTION))
    call.start()
    heard = call.result()
    assert "garden" in heard or "library" in heard, heard
    assert "b2" not in heard.replace(" ", "") and "basement" not in heard, heard
