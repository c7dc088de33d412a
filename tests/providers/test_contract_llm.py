"""One behavioural contract for every ``LanguageModel``: Gemini and OpenAI-compatible chat.

Both run the production classes on the official SDKs (``google-genai``,
``openai``) against local servers that speak the vendors' streaming HTTP APIs;
what the model was asked is checked on the recorded request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aipbx.providers.base import ChatMessage, LanguageModel
from aipbx.providers.errors import ProviderBadInput, ProviderError
from tests.fakes.gemini_http import FakeGemini
from tests.fakes.http_server import RecordedRequest
from tests.fakes.openai_http import FakeOpenAI
from tests.providers.conftest import Closer
from tests.providers.factories import gemini_llm, openai_chat

SYSTEM = "You are the receptionist of Hanbit Dental. Answer in one sentence."
CHAT = [
    ChatMessage("system", SYSTEM),
    ChatMessage("user", "Are you open on Saturday?"),
    ChatMessage("assistant", "Yes, from nine to one."),
    ChatMessage("user", "Can I book for ten?"),
]
DELTAS = ["Yes", ", ten o'clock", " on Saturday", " is free."]


@dataclass
class LlmCase:
    llm: LanguageModel
    server: FakeGemini | FakeOpenAI
    system_sent: Callable[[RecordedRequest], str | None]
    max_tokens_sent: Callable[[RecordedRequest], Any]
    temperature_sent: Callable[[RecordedRequest], Any]
    turns_sent: Callable[[RecordedRequest], list[tuple[str, str]]]  # (role, text) after the system prompt

    def script(self, **fields: Any) -> None:
        self.server.script = type(self.server.script)(**fields)

    @property
    def last_request(self) -> RecordedRequest:
        return self.server.requests[-1]


# These cases answer: a budget with room for a first request on a loaded machine (the stall tests,
# test_contract_failures.py, keep the short one).
ANSWER_BUDGETS = {"first_token_timeout_s": 10.0, "chunk_timeout_s": 10.0}


def _gemini_case(server: FakeGemini, closer: Closer) -> LlmCase:
    return LlmCase(
        llm=closer(gemini_llm(server, **ANSWER_BUDGETS)),
        server=server,
        system_sent=lambda r: r.json["systemInstruction"]["parts"][0]["text"],
        max_tokens_sent=lambda r: r.json["generationConfig"]["maxOutputTokens"],
        temperature_sent=lambda r: r.json["generationConfig"]["temperature"],
        turns_sent=lambda r: [(c["role"], c["parts"][0]["text"]) for c in r.json["contents"]],
    )


def _openai_case(server: FakeOpenAI, closer: Closer) -> LlmCase:
    return LlmCase(
        llm=closer(openai_chat(server, **ANSWER_BUDGETS)),
        server=server,
        system_sent=lambda r: next((m["content"] for m in r.json["messages"] if m["role"] == "system"), None),
        max_tokens_sent=lambda r: r.json["max_tokens"],
        temperature_sent=lambda r: r.json["temperature"],
        turns_sent=lambda r: [(m["role"], m["content"]) for m in r.json["messages"] if m["role"] != "system"],
    )


@pytest.fixture(params=["gemini", "openai"])
def case(request: pytest.FixtureRequest, closer: Closer) -> LlmCase:
    if request.param == "gemini":
        return _gemini_case(request.getfixturevalue("gemini_server"), closer)
    return _openai_case(request.getfixturevalue("openai_server"), closer)


def test_satisfies_the_protocol(case: LlmCase) -> None:
    assert isinstance(case.llm, LanguageModel)


async def test_streams_the_deltas_in_order_as_they_arrive(case: LlmCase) -> None:
    # given: the server pauses between chunks
    case.script(deltas=DELTAS, delay_s=0.15)

    # when
    received: list[tuple[float, str]] = []
    async for delta in case.llm.stream(CHAT):
        received.append((time.perf_counter(), delta))

    # then
    assert [d for _, d in received] == DELTAS
    assert received[-1][0] - received[0][0] > 0.3  # handed over one by one, not buffered to the end


async def test_sends_system_prompt_turns_and_generation_limits(case: LlmCase) -> None:
    # when
    _ = [d async for d in case.llm.stream(CHAT, max_tokens=64, temperature=0.2)]

    # then
    request = case.last_request
    assert case.system_sent(request) == SYSTEM
    assert case.max_tokens_sent(request) == 64
    assert case.temperature_sent(request) == pytest.approx(0.2)
    roles = [role for role, _ in case.turns_sent(request)]
    texts = [text for _, text in case.turns_sent(request)]
    assert texts == [m.content for m in CHAT[1:]]
    assert roles[0] == "user" and roles[1] in ("assistant", "model") and roles[2] == "user"


async def test_an_empty_answer_is_an_error_not_silence(case: LlmCase) -> None:
    case.script(deltas=[])

    with pytest.raises(ProviderError) as caught:
        _ = [d async for d in case.llm.stream(CHAT)]

    assert "empty" in str(caught.value)


@pytest.mark.parametrize(
    "chat",
    [
        [ChatMessage("system", SYSTEM)],
        [ChatMessage("user", "hi"), ChatMessage("wizard", "abracadabra")],
    ],
    ids=["no-user-turn", "unknown-role"],
)
async def test_malformed_conversations_are_bad_input_and_send_nothing(case: LlmCase, chat: list[ChatMessage]) -> None:
    with pytest.raises(ProviderBadInput):
        _ = [d async for d in case.llm.stream(chat)]
    assert case.server.requests == []


async def test_consumer_may_stop_early_and_ask_again(case: LlmCase) -> None:
    # given: a barge-in after the first delta
    case.script(deltas=DELTAS, delay_s=0.05)
    stream = case.llm.stream(CHAT)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    # when
    again = [d async for d in case.llm.stream(CHAT)]

    # then
    assert first == DELTAS[0]
    assert again == DELTAS
