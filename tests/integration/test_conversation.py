"""The AI answers from the callee's own knowledge, over a real call (issue: conversation engine).

Knowledge is seeded into the instance's real Chroma server with the same offline embedder the ARI
app uses; the question is synthesised speech sent from the phone as G.711 RTP; the answer is
judged by recognising what the phone received.
"""

from __future__ import annotations

import asyncio

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
