"""The AI answers from the callee's own knowledge, over a real call (issue: conversation engine).

Knowledge is seeded into the instance's real Chroma server with the same offline embedder the ARI
app uses; the question is synthesised speech sent from the phone as G.711 RTP; the answer is
judged by recognising what the phone received.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from softphone.analysis import silent_tail, speech_seconds
from tests.integration.audio_checks import ask, speech, transcribe, until, until_greeting, until_quiet

pytestmark = [pytest.mark.asterisk]

MEETING = "Next Monday's team meeting is at 10 a.m. in room 3."
OTHER_OWNER_SECRET = "The alarm code for the storage room is 4711."


async def seed(pbx, owner: str, texts: list[str]) -> None:
    from knowledge.retrieval import ChromaStore, Document, Retriever, UsemEmbedder

    store = ChromaStore("127.0.0.1", pbx.cfg.chroma_port, prefix=f"kb{pbx.cfg.name}", token=pbx.cfg.chroma_token)
    retriever = Retriever(UsemEmbedder(), store)
    await retriever.add(owner, [Document(f"{owner}-{i}", text) for i, text in enumerate(texts)])


async def test_the_ai_answers_from_the_callees_knowledge(pbx, ariapp, knowledge_store, phones):
    # given the owner of 1004 knows when the team meeting is, and another owner knows a secret
    await seed(pbx, "1004", [MEETING, "The office is closed on public holidays."])
    await seed(pbx, "1003", [OTHER_OWNER_SECRET])
    # when a caller asks 1004's assistant by voice
    heard = await ask(phones, "1004", "When is the team meeting next week?")
    # then the answer heard at the phone has the facts
    assert "monday" in heard and ("10" in heard or "ten" in heard), heard
    assert "3" in heard or "three" in heard, heard  # the room's number ("room" is heard as "rim" at times)


async def test_one_owners_knowledge_never_reaches_another_owners_callers(pbx, ariapp, knowledge_store, phones):
    await seed(pbx, "1003", [OTHER_OWNER_SECRET])
    heard = await ask(phones, "1002", "What is the alarm code for the storage room?")
    assert "4711" not in heard.replace(" ", "") and "alarm code" not in heard, heard
    assert "not sure" in heard, heard
    await asyncio.sleep(0)


async def test_a_near_miss_hears_honest_doubt_not_the_neighbouring_fact(pbx, ariapp, knowledge_store, phones):
    from knowledge.retrieval import ChromaStore, Document, Retriever, UsemEmbedder

    # given 1003's owner prices crowns and braces, and nothing else
    store = ChromaStore("127.0.0.1", pbx.cfg.chroma_port, prefix=f"kb{pbx.cfg.name}", token=pbx.cfg.chroma_token)
    await Retriever(UsemEmbedder(), store).add(
        "1003",
        [
            Document("1003-crown", "A zirconia crown costs 450,000 won including the fitting."),
            Document("1003-braces", "Metal braces cost 3.5 million won; ceramic braces cost 4.5 million won."),
        ],
    )
    # when a caller asks the price of what the knowledge does not list, then no price is read out as if it were
    heard = await ask(phones, "1003", "What's the price for veneers?")
    assert "not sure" in heard and "crown" not in heard and "braces" not in heard, heard
    # and what it does list is answered: the AI says the price (its reply as the call's record has it:
    # "four hundred fifty thousand" is sometimes transcribed back as "were 100 and 50,000"), and the
    # phone hears the cost spoken ("won" may be heard as "one"), not doubt
    from tests.integration.audio_checks import Recordings
    from tests.integration.test_telephony import cdr_baseline, new_cdr

    before = await cdr_baseline(pbx, ariapp)
    heard = await ask(phones, "1003", "How much is a crown?")
    (line,) = new_cdr(pbx, before)
    turns = Recordings(pbx.cfg).metadata(line["call_id"])["turns"]
    said = [t["text"] for t in turns if t["speaker"] == "ai"][1:]  # after the greeting
    assert any("450,000 won" in text for text in said), said
    # (the judge's transcript: "costs" was heard once as "clost", the price as "450,001")
    assert ("cost" in heard or "450" in heard.replace(",", "")) and "not sure" not in heard, heard


async def test_a_likely_answer_is_checked_with_the_caller_first_yes_hears_it_no_hears_doubt(
    pbx, ariapp, knowledge_store, phones
):
    from knowledge.retrieval import ChromaStore, Document, Retriever, UsemEmbedder
    from tests.integration.audio_checks import greeted

    # given 1002's knowledge, imported with its FAQ questions and headings
    store = ChromaStore("127.0.0.1", pbx.cfg.chroma_port, prefix=f"kb{pbx.cfg.name}", token=pbx.cfg.chroma_token)
    await Retriever(UsemEmbedder(), store).add(
        "1002",
        [
            Document(
                "1002-whitening",
                "Whitening costs 300,000 won for both arches, done in one visit.",
                {"item_id": "1002-whitening", "question": "How much does teeth whitening cost?"},
            ),
            Document(
                "1002-parking",
                "Patients park free for two hours in the basement car park.",
                {"item_id": "1002-parking", "heading": "Parking"},
            ),
            Document(
                "1002-holidays",
                "The office is closed on public holidays.",
                {"item_id": "1002-holidays", "heading": "Holidays"},
            ),
        ],
    )

    async def ask_then_reply(reply: str) -> tuple[str, str]:
        async with phones("1001") as caller:
            call = await greeted(caller, "1002")  # not registered here: the AI answers at once
            asked_at = len(call.received_audio())
            # when a caller asks in words the knowledge does not use (the gate: likely, not sure)
            await call.play_and_wait(await speech("Where can I leave my car?"))
            await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 1.0, 25, "the check")
            await until_quiet(call, asked_at, what="the end of the check")
            replied_at = len(call.received_audio())
            await call.play_and_wait(await speech(reply))
            await until(lambda: speech_seconds(call.received_audio()[replied_at:]) > 1.0, 25, "an answer")
            await until_quiet(call, replied_at)
            await call.hangup()
            received = call.received_audio()
            return await transcribe(received[asked_at:replied_at]), await transcribe(received[replied_at:])

    # then the AI checks the topic before saying anything from the knowledge ...
    check, answer = await ask_then_reply("Yes.")
    checking = re.compile(r"\bjust\W+(to|a)\W+check")  # "just to check", heard as "just a check" at times
    assert checking.search(check) and "parking" in check and "free" not in check, check
    # ... and a caller who agrees hears the owner's answer
    assert "free" in answer and ("two hours" in answer or "2 hours" in answer), answer
    # and a caller who says no hears honest doubt, never the passage
    check, answer = await ask_then_reply("No.")
    assert checking.search(check), check
    assert "not sure" in answer and "free" not in answer and "park" not in answer, answer


async def test_an_answer_is_the_owners_sentence_with_a_korean_name_said_so_it_is_heard(
    pbx, ariapp, knowledge_store, phones
):
    # given 1004's knowledge names its director with a Korean name (an English voice reads "Jiyoung"
    # as "jih-yung", heard as "G and") and gives a phone number
    await seed(
        pbx,
        "1004",
        [
            "Dr. Jiyoung Lee is the clinic director; for emergencies call 555-0199.",
            "The office is closed on public holidays.",
        ],
    )
    # when a caller asks who runs the clinic
    heard = await ask(phones, "1004", "Who is the director of the clinic?")
    # then the answer is the owner's sentence, without a lead-in, the name heard as its two syllables
    # ("g. young lee", "g-yun lead", "d young lead", "gene young lead": the first syllable varies
    # between runs; the second, "young", is what the English reading "jih-yung" loses) and the number whole
    assert "here is" not in heard and "what i have" not in heard, heard
    assert re.search(r"\w\W*\by[aeiou]+n", heard) and "g. and" not in heard, heard
    assert "5550199" in "".join(c for c in heard if c.isdigit()), heard


@pytest.mark.parametrize(
    ("first", "pause_s"),
    [
        ("So I was wondering, um", 0.8),  # a thought with a pause inside
        ("Hi, this is Alex from Acme.", 0.6),  # an introduction, then the question (not an answer to the introduction)
    ],
)
async def test_a_caller_who_pauses_mid_question_gets_one_answer_to_the_whole_question(
    pbx, ariapp, knowledge_store, phones, first: str, pause_s: float
):
    import numpy as np

    from tests.integration.audio_checks import greeted

    await seed(pbx, "1004", [MEETING, "The office is closed on public holidays."])
    # "So I was wondering, um ... [0.8 s] ... when is the team meeting next week?"
    said, rest = await speech(first), await speech("when is the team meeting next week?")
    question = np.concatenate([said, np.zeros(int(pause_s * 8000), dtype=said.dtype), rest])
    async with phones("1001") as caller:
        call = await greeted(caller, "1004")
        asked_at = len(call.received_audio())
        await call.play_and_wait(question)
        await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 1.5, 25, "an answer")
        await until_quiet(call, asked_at)
        await call.hangup()
        received = call.received_audio()
        heard = await transcribe(received[asked_at:])
    # the AI said nothing while the caller was still asking (no jumping into the pause) ...
    during = speech_seconds(received[asked_at : asked_at + len(question)])
    assert during < 0.2, f"the AI spoke {during:.2f} s into the caller's question: {heard}"
    # ... and answered the whole question
    # ("room 3", the answer's last words: heard once as "rim three")
    assert "monday" in heard and re.search(r"\b(room|three|3)\b", heard), heard
    assert "not sure" not in heard, heard


async def test_an_okay_over_the_answer_does_not_stop_it(pbx, ariapp, knowledge_store, phones):
    from tests.integration.audio_checks import Recordings, greeted
    from tests.integration.test_telephony import cdr_baseline, new_cdr

    await seed(pbx, "1004", [MEETING, "The office is closed on public holidays."])
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller:
        call = await greeted(caller, "1004")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech("When is the team meeting next week?"))
        answer_at = len(call.received_audio())
        await until(lambda: speech_seconds(call.received_audio()[answer_at:]) > 0.6, 25, "the answer to start")
        # when the caller says "okay" while the answer plays
        await call.play_and_wait(await speech("Okay."))

        # (the answer is held while "okay" is recognised: a gap of about a second, several on a busy
        # box, so the end of the answer is "most of its 2.7 s of speech heard, then quiet", not a long
        # pause; stopped at the "okay", it would have said under a second)
        def to_its_end() -> bool:
            audio = call.received_audio()
            return speech_seconds(audio[answer_at:]) > 2.0 and silent_tail(audio, 1.5)

        await until(to_its_end, 30, "the rest of the answer after the 'okay' (did it stop?)")
        await call.hangup()
        heard = await transcribe(call.received_audio()[asked_at:])
    # then the answer went on to its end, and the call counts no barge-in
    assert "monday" in heard and re.search(r"\b(room|three|3)\b", heard), heard  # "room" heard as "run"/"rim"
    (line,) = new_cdr(pbx, before)
    metadata = Recordings(pbx.cfg).metadata(line["call_id"])
    assert metadata["barge_ins"] == 0, metadata
    # and the end-of-turn model heard the question end (its probability is in the turn's marks)
    question = next(t for t in metadata["turns"] if t["speaker"] == "caller")
    assert 0 <= question["latency_ms"]["turn_complete"] <= 1, question


async def test_an_openai_compatible_llm_answers_with_the_callees_knowledge_and_failures_are_polite(
    pbx, ariapp, knowledge_store, phones
):
    from stack.instance import AppProcess
    from tests.fakes.openai_http import FakeOpenAI

    # given the ARI app switched to an OpenAI-compatible LLM (a local server speaking the real API)
    await seed(pbx, "1004", [MEETING])
    fake = FakeOpenAI()
    await fake.start()
    fake.script.deltas = ["The meeting is next Monday", " at ten a.m.", " in room three."]
    ariapp.stop()
    app = AppProcess(
        pbx.cfg, {"AIPBX_LLM": "openai", "OPENAI_API_KEY": "sk-test", "AIPBX_OPENAI_BASE_URL": fake.api_url}
    )
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
    # ("room three" heard by the judge once as "run three", as "rim three" in the test above)
    assert "monday" in second and re.search(r"\b(room|three|3)\b", second), second
    chat = [r for r in fake.requests if r.path.endswith("/chat/completions")][-1]
    body = json.dumps(chat.json)
    assert "room 3" in body and "Minsu Kim" not in body and "Support" in body


async def _fail_then_answer(phones, fake) -> list[str]:
    heard = []
    async with phones("1001") as caller:
        call = await caller.call("1004", timeout=10)
        await until_greeting(call)
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
        for attempt in range(2):
            if attempt == 1:
                fake.script.status = None
            asked_at = len(call.received_audio())
            await call.play_and_wait(await speech("When is the team meeting next week?"))
            await until(lambda a=asked_at: speech_seconds(call.received_audio()[a:]) > 1.0, 25, "an answer")
            await until_quiet(call, asked_at)
            heard.append(await transcribe(call.received_audio()[asked_at:]))
        assert not call.ended.is_set()
        await call.hangup()
    return heard


def stream_events(pbx, call_id: str | None = None) -> list[dict]:
    import redis
    from django.conf import settings

    from ariapp.events import stream_name

    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)
    events = [
        {**fields, "data": json.loads(fields["data"])} for _id, fields in client.xrange(stream_name(pbx.cfg.name))
    ]
    return [e for e in events if call_id is None or e["call_id"] == call_id]


async def test_the_console_can_follow_a_call_from_its_event_stream(pbx, ariapp, knowledge_store, phones):
    # given a conversation with the AI
    await seed(pbx, "1004", [MEETING])
    before = {e["event_id"] for e in stream_events(pbx)}
    await ask(phones, "1004", "When is the team meeting next week?")
    # then the stream tells the whole call, in order, each event once
    await until(
        lambda: any(e["type"] == "call.ended" for e in stream_events(pbx) if e["event_id"] not in before),
        10,
        "call.ended",
    )
    events = [e for e in stream_events(pbx) if e["event_id"] not in before]
    call_id = events[0]["call_id"]
    events = [e for e in events if e["call_id"] == call_id]
    types = [e["type"] for e in events]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    assert "call.answered" in types and types.count("call.ended") == 1
    finals = [e["data"]["text"].lower() for e in events if e["type"] == "transcript" and e["data"]["final"]]
    assert any("team meeting" in text for text in finals), finals
    interims = [i for i, e in enumerate(events) if e["type"] == "transcript" and not e["data"]["final"]]
    first_final = next(i for i, e in enumerate(events) if e["type"] == "transcript" and e["data"]["final"])
    assert interims and interims[0] < first_final  # heard live, before the turn was over
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    assert states[:3] == ["greeting", "listening", "thinking"] and "speaking" in states
    ai_turns = [e["data"] for e in events if e["type"] == "turn"]
    assert any("room 3" in turn["text"] or "room three" in turn["text"] for turn in ai_turns), ai_turns
    latency = [e["data"] for e in events if e["type"] == "latency"]
    assert latency and {"stt_final", "first_rtp"} <= set(latency[0])
    assert len({e["event_id"] for e in events}) == len(events)
    ended = events[-1]["data"]["cdr"]
    assert ended["call_id"] == call_id and ended["ai_handled"] is True
