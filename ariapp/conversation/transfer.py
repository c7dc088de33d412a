"""Putting a caller through to a person, the conversation's half: what the AI says, and the briefing.

Theory of operation
    The console decides who takes the call (an operator's "take this call" click, or a caller who
    asked for a person while an operator with a phone was on duty: the help request's decision is
    then ``{"kind": "transfer"}``) and sends the ARI app a transfer request. The call session rings
    the operator (``ariapp.calls.transfer``) and tells the orchestrator:

      transferring(name) ─► TRANSFERRING: "Let me put you through to <name>", then hold music;
                            nothing the caller says is answered meanwhile
      connected          ─► ENDED on our side: the AI is quiet, the session keeps the media (and the
                            recording) until the caller or the operator hangs up
      failed             ─► SPEAKING: "<name> could not take your call …" and the conversation goes on

    The operator hears :func:`briefing` before being bridged: who calls, what they asked, what the AI
    said last; kept short because the caller is waiting (a sentence or so each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ariapp.conversation.machine import Ev

MESSAGES = {
    "en": {
        "connecting": "Let me put you through to {operator}. One moment please.",
        "failed": "I'm sorry, {operator} could not take your call right now. I'm still here: how else can I help?",
        "briefing": "Call from {caller} for {owner}. They asked: {question}. {said}",
        "said": "I said: {text}. ",
        "someone": "a colleague",
    },
    "ko": {
        "connecting": "{operator} 님께 연결해 드리겠습니다. 잠시만 기다려 주세요.",
        "failed": "죄송합니다. {operator} 님이 지금 전화를 받을 수 없습니다. 제가 계속 도와드리겠습니다.",
        "briefing": "{owner} 님 앞으로 {caller} 에서 온 전화입니다. 문의 내용: {question}. {said}",
        "said": "AI 답변: {text}. ",
        "someone": "담당자",
    },
}

WORDS = 12  # of the question and of the AI's last words, in the briefing


@dataclass(frozen=True)
class Heard:
    """What the briefing tells the operator: who calls whom, their question, the AI's last reply."""

    caller: str
    owner: str
    question: str = ""
    ai_said: str = ""


def lang_of(language: str) -> str:
    return "ko" if language.lower().startswith("ko") else "en"


def message(name: str, language: str, operator: str = "") -> str:
    table = MESSAGES[lang_of(language)]
    return table[name].format(operator=operator.strip() or table["someone"])


def clip(text: str, words: int = WORDS) -> str:
    """The first ``words`` words of ``text`` (the briefing must stay short), without a trailing full stop."""
    parts = text.split()
    short = " ".join(parts[:words])
    return (short + " …" if len(parts) > words else short).rstrip(" .?!")


def spell_number(number: str) -> str:
    """A phone number read digit by digit ("1001" -> "1 0 0 1"), as a person says it."""
    return " ".join(number) if number.isdigit() else number


def briefing(heard: Heard, language: str) -> str:
    """The words the operator hears before the caller is put through (never empty)."""
    table = MESSAGES[lang_of(language)]
    said = table["said"].format(text=clip(heard.ai_said)) if heard.ai_said.strip() else ""
    question = clip(heard.question) or "-"
    text = table["briefing"].format(
        caller=spell_number(heard.caller) or "?", owner=heard.owner, question=question, said=said
    )
    return text.strip()


TRANSFER_WAIT_S = 5.0  # a "transfer" decision whose request never reached the call: then the away path
MUSIC_CHUNK_S = 30.0


async def hold_for_transfer(
    *,
    operator: str,
    language: str,
    settled: asyncio.Future[bool],
    say: Callable[[str], Awaitable[None]],
    music_until: Callable[[asyncio.Future[bool]], Awaitable[None]],
    post: Callable[[Ev], None],
) -> None:
    """The orchestrator's reply task while the operator's phone rings and they hear the briefing.

    ``music_until(settled)`` plays a stretch of hold music, cut short when ``settled`` is done; the
    future's result says whether the operator took the caller (True) or not (False).
    """
    await say(message("connecting", language, operator))
    while not settled.done():
        await music_until(settled)
    if settled.result():
        post(Ev.TRANSFERRED)
        return
    post(Ev.HUMAN_REPLY)
    await say(message("failed", language, operator))
