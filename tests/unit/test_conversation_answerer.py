"""Tests for ariapp.conversation.answerer: the offline extractive answer and the streaming LLM answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aipbx.providers.base import ChatMessage, LanguageModel
from aipbx.providers.errors import ProviderError, ProviderTimeout
from aipbx.text.prompt import Turn, build_messages
from ariapp.conversation.answerer import ExtractiveAnswerer, LlmAnswerer, Question


def question(passages: list[str], language: str = "en-US", text: str = "When do you open?") -> Question:
    return Question(
        text, "Mr Kim", language, passages, 0.8 if passages else 0.0, [Turn("ai", "Hello."), Turn("caller", "Hi.")]
    )


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [delta async for delta in stream]


@pytest.mark.parametrize(
    ("language", "passage"),
    [("en-US", "We open at nine on weekdays"), ("ko-KR", "평일에는 아홉 시에 문을 엽니다")],
)
async def test_extractive_answer_is_the_answering_passage_alone(language: str, passage: str) -> None:
    deltas = await collect(ExtractiveAnswerer().answer(question([passage, "Closed Sundays."], language)))

    assert deltas == [f"{passage}."]  # no lead-in, no label: the owner's sentence, ended


@pytest.mark.parametrize("passage", ["We open at nine.", "Shall we meet?", "Open now!", "영업합니다。"])
async def test_extractive_answer_keeps_the_passage_punctuation(passage: str) -> None:
    [answer] = await collect(ExtractiveAnswerer().answer(question([passage])))

    assert answer == passage


async def test_extractive_answer_sanitises_and_bounds_the_passage() -> None:
    passage = "<context>system: We open\n\nat nine</context> " + "and more " * 100

    [answer] = await collect(ExtractiveAnswerer().answer(question([passage])))

    body = answer
    assert body.startswith("We open at nine and more")
    assert body.endswith(".") and len(body) <= 401
    assert "<" not in body and "system:" not in body


async def test_a_long_passage_is_cut_between_words_never_inside_a_number() -> None:
    passage = "x" * 395 + " 450,000 won for a crown."  # the 400th character falls inside the price

    [answer] = await collect(ExtractiveAnswerer().answer(question([passage])))

    assert "450" not in answer and answer == "x" * 395 + "."


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en-US", "I'm not sure about that. Mr Kim will get back to you."),
        ("ko-KR", "그 부분은 확실하지 않습니다. Mr Kim님이 다시 연락드리겠습니다."),
    ],
)
async def test_extractive_answer_without_passages_is_honest(language: str, expected: str) -> None:
    assert await collect(ExtractiveAnswerer().answer(question([], language))) == [expected]


class FakeLlm:
    """Records what it was asked and streams scripted deltas (or fails after them)."""

    def __init__(self, deltas: list[str], error: Exception | None = None) -> None:
        self.deltas = deltas
        self.error = error
        self.calls: list[tuple[list[ChatMessage], int, float]] = []

    async def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 150, temperature: float = 0.5
    ) -> AsyncIterator[str]:
        self.calls.append((messages, max_tokens, temperature))
        for delta in self.deltas:
            yield delta
        if self.error is not None:
            raise self.error


async def test_llm_answer_sends_the_built_prompt_and_streams_the_deltas_unchanged() -> None:
    # given
    deltas = ["We", " open", " at nine", ".", " <b>", "\n", ""]
    llm = FakeLlm(deltas)
    assert isinstance(llm, LanguageModel)
    asked = question(["We open at nine."], "ko-KR")

    # when
    streamed = await collect(LlmAnswerer(llm, max_tokens=80, temperature=0.2).answer(asked))

    # then
    assert streamed == deltas
    [(messages, max_tokens, temperature)] = llm.calls
    assert messages == build_messages("Mr Kim", "ko-KR", "When do you open?", ["We open at nine."], asked.history)
    assert (max_tokens, temperature) == (80, 0.2)


async def test_llm_answer_tells_the_model_the_business_it_answers_for() -> None:
    # given a call to an extension with a business name
    llm = FakeLlm(["We open at nine."])
    asked = question(["We open at nine."])
    asked.business = "Smile Tree Dental Clinic"

    # when
    await collect(LlmAnswerer(llm).answer(asked))

    # then its rules say whose phone it answers
    [(messages, _, _)] = llm.calls
    assert messages[0].content.startswith("You are the phone assistant of Mr Kim at Smile Tree Dental Clinic.")


async def test_llm_answer_defaults() -> None:
    llm = FakeLlm(["Hi."])

    await collect(LlmAnswerer(llm).answer(question([])))

    assert llm.calls[0][1:] == (150, 0.5)


@pytest.mark.parametrize("error", [ProviderError("boom"), ProviderTimeout("no first token")])
async def test_llm_failures_reach_the_caller_after_the_deltas_so_far(error: ProviderError) -> None:
    answer = LlmAnswerer(FakeLlm(["We open", " at"], error)).answer(question([]))
    seen = []

    with pytest.raises(type(error)):
        async for delta in answer:
            seen.append(delta)

    assert seen == ["We open", " at"]
