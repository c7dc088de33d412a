"""Knowledge extraction from a finished call: the design's usefulness judgement (section 4.4).

Theory of operation: a call's transcript is a list of :class:`Turn` (speaker
``caller``/``ai``/``callee``). A :class:`Judge` reads it and answers with the
design's JSON::

    {"is_useful": bool, "confidence": 0..1, "reason": str,
     "extracted_info": [{"text": str, "category": "약속|정보|지시|기타", "keywords": [str]}]}

Two judges:

* :class:`LlmJudge` prompts a generative ``LanguageModel`` with the design's
  prompt and parses its answer strictly: anything but that JSON raises
  :class:`ExtractionError` (and the task writes nothing); a timeout or a
  retryable provider error raises :class:`JudgeUnavailable` (the task retries).
* :class:`RuleJudge`, the offline default: splits the relevant utterances into
  sentences and proposes those that carry facts (dates, times, weekdays in
  Korean and English, numbers, places, phone numbers, codes/addresses,
  instructions; questions are never facts), with a
  confidence that grows with the number of kinds of fact found.

Transcripts are masked (:func:`masked_turns`) before a judge sees them, and the texts a judge
returns are masked again before they are stored (a model may reconstruct a number).

Whose words become knowledge (§4.4, "착신자 발화만 추출"): the judge reads the whole conversation
for context, but only what the **callee** — the extension's owner, whose knowledge base it is —
stated becomes a fact. The caller's words are not the owner's knowledge: on an AI call, what the
caller left (a message, a request, a number to call back) is kept as **call notes**
(``call_notes`` in the judgement), never as facts; the AI's own words only repeat or invent, so
they are neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from aipbx.privacy import mask_pii
from knowledge.models import Category

__all__ = [
    "DESIGN_PROMPT",
    "ExtractionError",
    "Judge",
    "JudgeUnavailable",
    "LlmJudge",
    "RuleJudge",
    "Turn",
    "category_of",
    "masked_turns",
    "owner_turns",
    "parse_judgement",
]


class ExtractionError(Exception):
    """The input or the judge's answer is unusable; ``retryable`` is always False."""

    retryable = False


class JudgeUnavailable(Exception):
    """The judge's model timed out or failed transiently: the task retries later."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Turn:
    """One utterance; ``start_s``/``end_s`` are seconds from the start of the call."""

    speaker: str
    text: str
    start_s: float
    end_s: float


class Judge(Protocol):
    """Decides what of a call is worth remembering; returns the design's JSON dict."""

    def judge(self, turns: Sequence[Turn]) -> dict[str, Any]:
        """Judge ``turns`` (the whole call, in order)."""
        ...


_CATEGORY_NAMES: Final = {
    "약속": Category.APPOINTMENT,
    "정보": Category.INFO,
    "지시": Category.INSTRUCTION,
    "기타": Category.OTHER,
    "appointment": Category.APPOINTMENT,
    "info": Category.INFO,
    "information": Category.INFO,
    "instruction": Category.INSTRUCTION,
    "other": Category.OTHER,
}


def category_of(name: str) -> str:
    """The model's category for a design category name (Korean or English); unknown -> other."""
    return _CATEGORY_NAMES.get(name.strip().lower(), Category.OTHER)


def masked_turns(turns: Sequence[Turn]) -> list[Turn]:
    """``turns`` with phone, card, e-mail and resident numbers masked (:func:`aipbx.privacy.mask_pii`).

    Applied before any judge reads a transcript: what a language model is sent and what the
    knowledge base stores never carries a caller's personal numbers.
    """
    return [replace(turn, text=mask_pii(turn.text)) for turn in turns]


OWNER: Final = "callee"


def owner_turns(turns: Sequence[Turn]) -> list[Turn]:
    """What the extension's owner said: the only source of facts."""
    return [turn for turn in turns if turn.speaker == OWNER and turn.text.strip()]


def caller_turns_of_ai_call(turns: Sequence[Turn]) -> list[Turn]:
    """What a caller said to the AI (the source of call notes); empty for a phone-to-phone call."""
    if not any(turn.speaker == "ai" for turn in turns):
        return []
    return [turn for turn in turns if turn.speaker == "caller" and turn.text.strip()]


def speaker_of(text: str, turns: Sequence[Turn]) -> str:
    """The speaker whose turn shares the most words with ``text`` (a model's item does not say it)."""
    words = set(_WORD.findall(text.lower()))
    best = max(turns, key=lambda turn: len(words & set(_WORD.findall(turn.text.lower()))), default=None)
    return best.speaker if best is not None else ""


_WORD: Final = re.compile(r"\w+")


DESIGN_PROMPT: Final = """다음 통화 내용을 분석하여 향후 AI 비서가 활용할 수 있는
유용한 정보가 있는지 판단하세요.

유용한 정보 예시:
- 약속 일정
- 연락처 정보
- 업무 지시사항
- 자주 묻는 질문에 대한 답변
- 개인 선호도

통화 내용:
{transcript}

화자: [callee]는 이 내선의 주인(이 지식의 주인), [caller]는 전화를 건 사람, [ai]는 AI 비서입니다.
대화 전체를 맥락으로 읽되, extracted_info에는 [callee]가 직접 말한 사실만 넣고 각 항목에
"speaker": "callee"를 붙이세요. [caller]나 [ai]의 말은 사실로 넣지 마세요. 전화 건 사람이 AI에게
남긴 메시지나 요청은 사실이 아니라 "call_notes" 목록(문장들)에 넣으세요.
(Speakers: [callee] owns this knowledge; only facts the callee stated go into extracted_info, each with
"speaker": "callee". A caller's message to the AI goes into "call_notes", never into extracted_info.)

출력 형식 (JSON 하나만 출력하세요):
{{
  "is_useful": true/false,
  "confidence": 0.0-1.0,
  "reason": "판단 이유",
  "extracted_info": [
    {{
      "text": "추출할 텍스트",
      "category": "약속|정보|지시|기타",
      "keywords": ["키워드1", "키워드2"],
      "speaker": "callee"
    }}
  ],
  "call_notes": ["전화 건 사람이 남긴 메시지"]
}}"""

_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_judgement(answer: str) -> dict[str, Any]:
    """Parse and validate a judge's JSON answer (a surrounding code fence is tolerated).

    Raises:
        ExtractionError: Not JSON, or not the design's shape.
    """
    fenced = _FENCE.match(answer)
    body = fenced.group(1) if fenced else answer.strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"the judge's answer is not valid JSON ({exc.msg} at char {exc.pos}): {answer[:120]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise ExtractionError(f"the judge's answer must be a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("is_useful"), bool):
        raise ExtractionError("the judge's answer lacks a boolean 'is_useful'")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0.0 <= confidence <= 1.0:
        raise ExtractionError(f"'confidence' must be a number in [0, 1], got {confidence!r}")
    info = data.get("extracted_info", [])
    if not isinstance(info, list):
        raise ExtractionError("'extracted_info' must be a list")
    for index, entry in enumerate(info):
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise ExtractionError(f"extracted_info[{index}] needs a non-empty 'text'")
        keywords = entry.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise ExtractionError(f"extracted_info[{index}].keywords must be a list of strings")
        if not isinstance(entry.get("category", "기타"), str):
            raise ExtractionError(f"extracted_info[{index}].category must be a string")
        if not isinstance(entry.get("speaker", ""), str):
            raise ExtractionError(f"extracted_info[{index}].speaker must be a string")
    notes = data.get("call_notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ExtractionError("'call_notes' must be a list of strings")
    data.setdefault("reason", "")
    data["extracted_info"] = info
    data["call_notes"] = [n.strip() for n in notes if n.strip()]
    return data


def owners_facts(verdict: dict[str, Any], turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The judgement's facts that the owner stated: a model's item claiming another speaker, or whose
    words are the caller's or the AI's rather than the callee's, is not the owner's knowledge."""
    facts = []
    for entry in verdict["extracted_info"]:
        claimed = entry.get("speaker") or OWNER
        if claimed == OWNER and speaker_of(entry["text"], turns) == OWNER:
            facts.append({**entry, "speaker": OWNER})
    return facts


class LlmJudge:
    """The design's judgement by a generative model (``aipbx.providers.base.LanguageModel``).

    Each :meth:`judge` runs in its own event loop (it is called from a Celery
    worker's thread), and a network client is bound to the loop that first used
    it; so ``llm`` is either a model used once, or (in production) a zero-argument
    factory called inside every judgement's loop, whose model is closed afterwards.

    Args:
        llm: An object with the ``LanguageModel.stream`` method, or a factory of one.
        max_tokens: Answer budget.
        timeout_s: Time budget of the whole answer.
    """

    def __init__(self, llm: Any, *, max_tokens: int = 800, timeout_s: float = 60.0) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s

    def prompt(self, turns: Sequence[Turn]) -> str:
        """The design's prompt filled with the transcript (``[speaker] text`` lines)."""
        transcript = "\n".join(f"[{turn.speaker}] {turn.text}" for turn in turns)
        return DESIGN_PROMPT.format(transcript=transcript)

    def judge(self, turns: Sequence[Turn]) -> dict[str, Any]:
        """Ask the model (blocking) and return its validated JSON.

        Raises:
            ExtractionError: Malformed answer, or the model failed for good (bad key, bad request).
            JudgeUnavailable: Timeout, or a provider error marked ``retryable`` (429, 5xx, connection).
        """
        try:
            answer = asyncio.run(self._ask(self.prompt(turns)))
        except TimeoutError as exc:
            raise JudgeUnavailable(f"the language model gave no answer within {self.timeout_s} s") from exc
        except Exception as exc:  # the provider's own hierarchy, translated at this boundary
            if getattr(exc, "retryable", False):
                raise JudgeUnavailable(f"the language model failed: {exc}") from exc
            raise ExtractionError(f"the language model failed: {exc}") from exc
        return parse_judgement(answer)

    async def _ask(self, prompt: str) -> str:
        from aipbx.providers.base import ChatMessage  # pure module; imported here to keep Django apps light

        messages = [
            ChatMessage("system", "You extract reusable facts from phone calls. Answer with JSON only."),
            ChatMessage("user", prompt),
        ]
        owned = not hasattr(self.llm, "stream")
        llm = self.llm() if owned else self.llm
        parts: list[str] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                async for delta in llm.stream(messages, max_tokens=self.max_tokens, temperature=0.0):
                    parts.append(delta)
        finally:
            if owned and hasattr(llm, "aclose"):
                with contextlib.suppress(Exception):  # closing must not hide the answer or its error
                    async with asyncio.timeout(2.0):
                        await llm.aclose()
        return "".join(parts)


# --- RuleJudge ---------------------------------------------------------------------------------
_WEEKDAYS_EN: Final = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_FEATURES: Final[dict[str, re.Pattern[str]]] = {
    "time": re.compile(
        rf"\b(?:{_WEEKDAYS_EN}|today|tomorrow|tonight|yesterday|next week|this week|noon|midnight|"
        r"o'clock|morning|afternoon|evening|january|february|march|april|may|june|july|august|"
        r"september|october|november|december)\b|\b\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)|"
        r"[월화수목금토일]요일|오늘|내일|모레|어제|다음\s*주|이번\s*주|오전|오후|아침|저녁|점심|"
        r"\d{1,2}\s*시(?:\s*\d{1,2}\s*분|\s*반)?|\d{1,2}\s*월\s*\d{1,2}\s*일",
        re.IGNORECASE,
    ),
    "phone": re.compile(r"\b\d{2,4}-\d{3,4}-\d{4}\b|\b(?:extension|ext\.?)\s*\d{2,6}\b|내선\s*\d{2,6}", re.IGNORECASE),
    "place": re.compile(
        r"\b(?:room|floor|office|building|lobby|street|station|desk|hall)\b|"
        r"회의실|사무실|층|호실|건물|로비|역|\d+\s*호",
        re.IGNORECASE,
    ),
    "detail": re.compile(
        r"\b(?:password|passcode|code|address|e-?mail|account)\b|[\w.+-]+@[\w-]+\.[\w.]+|"
        r"비밀번호|주소|이메일|계좌",
        re.IGNORECASE,
    ),
    "instruction": re.compile(
        r"\b(?:please|call (?:me )?back|make sure|don't forget|remember to|do not|never|"
        r"need to|have to|must|should)\b|해\s*주세요|주세요|하세요|부탁|전화\s*주",
        re.IGNORECASE,
    ),
    # the owner's business: hours, prices, places, services ("we open on Saturdays", "a crown costs 500,000 won")
    "business": re.compile(
        r"\b(?:open|opens|opening|close|closes|closed|hours|price|prices|costs?|fee|charge|"
        r"won|dollars?|located|available|appointments?|reservations?|book|booking|"
        r"parking|menu|service|discount)\b|\$\d|"
        r"영업|문을?\s*(?:엽|열|닫)|휴무|쉽니다|가격|비용|요금|\d+\s*원|만\s*원|위치|예약|배송|주차|할인",
        re.IGNORECASE,
    ),
    "number": re.compile(
        r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
        r"twenty|thirty|forty|fifty|hundred|thousand)\b|[일이삼사오육칠팔구십백천만]\s*(?:시|분|원|층|호)",
        re.IGNORECASE,
    ),
}
_SENTENCE_END: Final = re.compile(r"[.!?。！？]+(?=\s|$)|\n")
_ABBREVIATION: Final = re.compile(r"(?:\b[ap]\.m|\b(?:mr|mrs|ms|dr|st|no|vs|etc|e\.g|i\.e))\.$", re.IGNORECASE)
# Transcripts often lack punctuation: a Korean sentence-final ending followed by a blank ends a sentence.
_KO_ENDINGS: Final = ("니다", "세요", "어요", "아요", "해요", "에요", "예요", "네요", "죠")
_KO_END: Final = re.compile("(?:" + "|".join(f"(?<={end})" for end in _KO_ENDINGS) + r")\s+")
_MIN_WORDS: Final = 3
# Openings that carry no fact and come before one on a call, comma or not.
_SPOKEN_PREAMBLE: Final = re.compile(
    r"^\s*(?:good question|great question|let me (?:see|check)|you know|well|so|okay|ok|oh|yes|yeah|sure|right|"
    r"actually|좋은 질문이에요|좋은 질문입니다|음|아|네|그게)\b[,.!]?\s+",
    re.IGNORECASE,
)
# A question asks for a fact, it does not state one.
_QUESTION: Final = re.compile(
    r"[?？]\s*$|^(?:when|where|what|who|why|how|which|is|are)\b|"
    r"언제|어디|무엇|뭐|몇\s*시|누구|어떻게|나요\s*$|까요\s*$",
    re.IGNORECASE,
)


def _sentences(text: str) -> list[str]:
    """Sentences of ``text``; "a.m." or "Dr." followed by a lower-case word does not end one."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        following = text[match.end() :].lstrip()[:1]
        if _ABBREVIATION.search(text[start : match.end()]) and following and not following.isupper():
            continue
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [part.strip() for piece in pieces for part in _KO_END.split(piece) if part.strip()]


class RuleJudge:
    """Offline judge: fact-bearing sentences of what the owner said, no generative model; on an AI call,
    the caller's fact-bearing sentences become call notes.

    Args:
        min_confidence: Sentences scoring below are not proposed.
    """

    def __init__(self, min_confidence: float = 0.7) -> None:
        self.min_confidence = min_confidence

    def score(self, sentence: str) -> tuple[float, set[str], list[str]]:
        """``(confidence, kinds of fact, matched keywords)`` of one sentence."""
        kinds: set[str] = set()
        keywords: list[str] = []
        for kind, pattern in _FEATURES.items():
            found = [m.group().strip() for m in pattern.finditer(sentence)]
            if found:
                kinds.add(kind)
                if kind != "number":
                    keywords.extend(found)
        if not kinds or len(sentence.split()) < _MIN_WORDS or _QUESTION.search(sentence):
            return 0.0, kinds, []
        # number alone is weak ("one", "two" in chit-chat are words, digits usually mean a fact)
        strong = len(kinds - {"number"})
        confidence = min(0.95, 0.45 + 0.2 * strong + (0.1 if "number" in kinds else 0.0))
        return round(confidence, 2), kinds, list(dict.fromkeys(k.lower() for k in keywords))[:8]

    def without_preamble(self, sentence: str) -> str:
        """The sentence without a spoken preamble that carries no fact ("Good question, we open at
        nine" -> "We open at nine"): on a call, facts often come after one."""
        head, comma, rest = sentence.partition(",")
        if not comma or len(head.split()) > 4 or not rest.strip() or self.score(head + ".")[1]:
            # the recogniser does not always write the comma: "Good question from next week we open ..."
            spoken = _SPOKEN_PREAMBLE.match(sentence)
            if spoken is None or len(sentence[spoken.end() :].split()) < _MIN_WORDS:
                return sentence
            rest = sentence[spoken.end() :]
        rest = rest.strip()
        return rest[0].upper() + rest[1:]

    def judge(self, turns: Sequence[Turn]) -> dict[str, Any]:
        """Propose the owner's fact-bearing sentences scoring at least ``min_confidence``."""
        proposals: list[dict[str, Any]] = []
        notes = [
            sentence
            for turn in caller_turns_of_ai_call(turns)
            for sentence in _sentences(turn.text)
            if self.score(sentence)[0] >= self.min_confidence
        ]
        for turn in owner_turns(turns):
            for sentence in _sentences(turn.text):
                sentence = self.without_preamble(sentence)
                confidence, kinds, keywords = self.score(sentence)
                if confidence < self.min_confidence:
                    continue
                proposals.append(
                    {
                        "text": sentence,
                        "category": _rule_category(kinds),
                        "keywords": keywords,
                        "confidence": confidence,
                        "speaker": turn.speaker,
                        "span": {"start_s": turn.start_s, "end_s": turn.end_s},
                    }
                )
        best = max((p["confidence"] for p in proposals), default=0.0)
        reason = (
            f"{len(proposals)} sentence(s) carry dates, places, numbers or instructions"
            if proposals
            else "no sentence carries a date, place, number, phone number or instruction"
        )
        return {
            "is_useful": bool(proposals),
            "confidence": best,
            "reason": reason,
            "extracted_info": proposals,
            "call_notes": notes,
        }


def _rule_category(kinds: set[str]) -> str:
    if "instruction" in kinds:
        return "지시"
    if "business" in kinds:  # "we open on Saturdays from ten to two" is information, not an appointment
        return "정보"
    if "time" in kinds:
        return "약속"
    if kinds & {"phone", "place", "number", "detail"}:
        return "정보"
    return "기타"
