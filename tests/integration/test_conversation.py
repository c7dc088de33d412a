"""The AI answers from the callee's own knowledge, over a real call (issue: conversation engine).

Knowledge is seeded into the instance's real Chroma server with the same offline embedder the ARI
app uses; the question is synthesised speech sent from the phone as G.711 RTP; the answer is
judged by recognising what the phone received.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from softphone.analysis import silent_tail, speech_seconds
from tests.integration.audio_checks import speech, transcribe, until

pytestmark = [pytest.mark.asterisk]

MEETING = "Next Monday's team meeting is at 10 a.m. in room 3."
OTHER_OWNER_SECRET = "The alarm code for the storage room is 4711."


async def seed(pbx, owner: str, texts: list[str]) -> None:
    from knowledge.retrieval import ChromaStore, Document, Retriever, UsemEmbedder

    store = ChromaStore("127.0.0.1", pbx.cfg.chroma_port, prefix=f"kb{pbx.cfg.name}")
    retriever = Retriever(UsemEmbedder(), store)
    await retriever.add(owner, [Document(f"{owner}-{i}", text) for i, text in enumerate(texts)])


async def ask(phones, ext: str, question: str) -> str:
    """Call ``ext`` (not registered: the AI answers at once), ask by voice, return what was heard."""
    async with phones("1001") as caller:
        call = await caller.call(ext, timeout=10)
        await until(lambda: speech_seconds(call.received_audio()) > 2.5, 20, "the greeting")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(question))
        await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 1.5, 25, "an answer")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 25, "the end of the answer")
        await call.hangup()
        return await transcribe(call.received_audio()[asked_at:])


async def test_the_ai_answers_from_the_callees_knowledge(pbx, ariapp, knowledge_store, phones):
    # given the owner of 1004 knows when the team meeting is, and another owner knows a secret
    await seed(pbx, "1004", [MEETING, "The office is closed on public holidays."])
    await seed(pbx, "1003", [OTHER_OWNER_SECRET])
    # when a caller asks 1004's assistant by voice
    heard = await ask(phones, "1004", "When is the team meeting next week?")
    # then the answer heard at the phone has the facts
    assert "monday" in heard and ("10" in heard or "ten" in heard), heard
    assert "room" in heard, heard


async def test_one_owners_knowledge_never_reaches_another_owners_callers(pbx, ariapp, knowledge_store, phones):
    await seed(pbx, "1003", [OTHER_OWNER_SECRET])
    heard = await ask(phones, "1002", "What is the alarm code for the storage room?")
    assert "4711" not in heard.replace(" ", "") and "alarm code" not in heard, heard
    assert "not sure" in heard, heard
    await asyncio.sleep(0)


async def test_an_openai_compatible_llm_answers_with_the_callees_knowledge_and_failures_are_polite(
        pbx, ariapp, knowledge_store, phones):
    from stack.instance import AppProcess
    from tests.fakes.openai_http import FakeOpenAI

    # given the ARI app switched to an OpenAI-compatible LLM (a local server speaking the real API)
    await seed(pbx, "1004", [MEETING])
    fake = FakeOpenAI()
    await fake.start()
    fake.script.deltas = ["The meeting is next Monday", " at ten a.m.", " in room three."]
    ariapp.stop()
    app = AppProcess(pbx.cfg, {"AIPBX_LLM": "openai", "OPENAI_API_KEY": "sk-test",
                               "AIPBX_OPENAI_BASE_URL": fake.api_url})
    try:
        await asyncio.to_thread(app.start)
        # when the caller asks twice, the LLM failing (HTTP 500) on the first question only
        fake.script.status = 500
        first, second = await _fail_then_answer(phones, fake)
    finally:
        await asyncio.to_thread(app.stop)
        await fake.stop()
        await asyncio.to_thread(ariapp.start)
    # then the caller heard a polite fallback, then the LLM's answer; the LLM got the knowledge
    assert "sorry" in first and "trouble" in first, first
    assert "monday" in second and "room" in second, second
    chat = [r for r in fake.requests if r.path.endswith("/chat/completions")][-1]
    body = json.dumps(chat.json)
    assert "room 3" in body and "Minsu Kim" not in body and "Support" in body


async def _fail_then_answer(phones, fake) -> list[str]:
    heard = []
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until(lambda: speech_seconds(call.received_audio()) > 2.5, 20, "the greeting")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
        for attempt in range(2):
            if attempt == 1:
                fake.script.status = None
            asked_at = len(call.received_audio())
            await call.play_and_wait(await speech("When is the team meeting next week?"))
            await until(lambda a=asked_at: speech_seconds(call.received_audio()[a:]) > 1.0, 25, "an answer")
            await until(lambda: silent_tail(call.received_audio(), 1.0), 25, "the end of the answer")
            heard.append(await transcribe(call.received_audio()[asked_at:]))
        assert not call.ended.is_set()
        await call.hangup()
    return heard
