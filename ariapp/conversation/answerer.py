"""What the AI answers with: a chat LLM with the design's prompt, or — offline, where no usable
generative model installs — the knowledge passage that answers, spoken as the owner wrote it.

Both take the question and the retrieved passages and stream text; the offline one hands over
(``needs_human``) when nothing relevant was found, instead of inventing an answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from aipbx.providers.base import LanguageModel
from aipbx.text.prompt import Turn, build_messages, sanitize


@dataclass
class Question:
    text: str
    owner_name: str
    language: str
    passages: list[str]  # best first, already above the retrieval threshold
    confidence: float
    history: list[Turn] = field(default_factory=list)
    business: str = ""  # the extension's business name ("" = none): the LLM's prompt says it


class Answerer(Protocol):
    def answer(self, question: Question) -> AsyncIterator[str]: ...


class LlmAnswerer:
    def __init__(self, llm: LanguageModel, *, max_tokens: int = 150, temperature: float = 0.5) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def answer(self, question: Question) -> AsyncIterator[str]:
        messages = build_messages(
            question.owner_name,
            question.language,
            question.text,
            question.passages,
            question.history,
            business=question.business,
        )
        async for delta in self.llm.stream(messages, max_tokens=self.max_tokens, temperature=self.temperature):
            yield delta


UNSURE = {
    "en": "I'm not sure about that. {owner} will get back to you.",
    "ko": "그 부분은 확실하지 않습니다. {owner}님이 다시 연락드리겠습니다.",
}


class ExtractiveAnswerer:
    """Offline answers: the passage judged to answer, and nothing else. No generation, no invention.

    Knowledge items keep what is spoken apart from how it is found (an FAQ's answer without its
    question, a paragraph without its heading), written by the owner as a sentence to a caller
    ("We are open ..."), so the passage itself is the natural answer: a lead-in such as "Here is
    what I have:" only delays it and sounds like a machine reading a database.
    """

    async def answer(self, question: Question) -> AsyncIterator[str]:
        lang = "ko" if question.language.startswith("ko") else "en"
        if not question.passages:
            yield UNSURE[lang].format(owner=question.owner_name)
            return
        passage = sanitize(question.passages[0], 100_000)
        if len(passage) > 400:  # cut between words: half a number ("450,0") would be a wrong one
            passage = passage[:400].rsplit(" ", 1)[0] if " " in passage[:400] else passage[:400]
        if passage and passage[-1] not in ".!?。":
            passage += "."
        yield passage
