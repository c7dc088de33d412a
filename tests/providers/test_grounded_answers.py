"""An LLM configured (here over the OpenAI wire, against the local fake) is held to the knowledge: the
prompt tells it to refuse, and a number it states that the knowledge does not is never spoken."""

from __future__ import annotations

from aipbx.text.guard import reply_splitter
from aipbx.text.prompt import system_prompt
from ariapp.conversation.answerer import LlmAnswerer, Question
from tests.fakes.openai_http import FakeOpenAI
from tests.providers.conftest import Closer
from tests.providers.factories import openai_chat

OWNER = "Hanbit Dental"
FALLBACK = "I'm not sure about that. Hanbit Dental will get back to you."


async def spoken_reply(llm, question: Question) -> list[str]:
    """What the caller would hear: the answer's pieces through the output guard, as the orchestrator speaks them."""
    splitter = reply_splitter(
        system_prompt(OWNER, question.language),
        OWNER,
        question.passages,
        FALLBACK,
        heard=[question.text, *(t.text for t in question.history)],
    )
    pieces: list[str] = []
    async for delta in LlmAnswerer(llm).answer(question):
        pieces += splitter.push(delta)
    return pieces + splitter.flush()


async def test_a_model_that_prices_a_near_miss_is_not_heard(openai_server: FakeOpenAI, closer: Closer) -> None:
    # given: the knowledge prices crowns; the caller asks about veneers, and the model makes a price up
    openai_server.script.deltas = ["Veneers cost", " 600,000 won", " each.", " Anything else?"]
    llm = closer(openai_chat(openai_server, budget_s=10.0))
    question = Question("How much are veneers?", OWNER, "en-US", ["A zirconia crown costs 450,000 won."], 0.2)

    # when
    heard = await spoken_reply(llm, question)

    # then: the caller hears the honest fallback, and nothing after it
    assert heard == [FALLBACK]


async def test_a_model_that_quotes_the_knowledge_is_heard(openai_server: FakeOpenAI, closer: Closer) -> None:
    openai_server.script.deltas = ["A zirconia crown", " is 450,000 won,", " fitting included."]
    llm = closer(openai_chat(openai_server, budget_s=10.0))
    question = Question("What does a crown cost?", OWNER, "en-US", ["A zirconia crown costs 450,000 won."], 0.9)

    heard = await spoken_reply(llm, question)

    assert " ".join(heard) == "A zirconia crown is 450,000 won, fitting included."


async def test_without_an_answering_passage_the_model_is_told_to_refuse(
    openai_server: FakeOpenAI, closer: Closer
) -> None:
    # the relevance gate found nothing that answers: the model gets no passages and the rule to say so
    openai_server.script.deltas = ["I'm not sure about that,", " I'll ask someone to call you back."]
    llm = closer(openai_chat(openai_server, budget_s=10.0))

    heard = await spoken_reply(llm, Question("Do you do veneers?", OWNER, "en-US", [], 0.1))

    sent = openai_server.requests[0].json["messages"]
    system, last = sent[0]["content"], sent[-1]["content"]
    assert "not sure" in system.lower() or "don't know" in system.lower(), system
    assert "Do you do veneers?" in last and "450,000" not in last
    assert heard == ["I'm not sure about that,", "I'll ask someone to call you back."]
