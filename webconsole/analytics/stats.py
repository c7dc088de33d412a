"""The analytics numbers, computed from plain rows: no ORM here, so every formula is tested directly.

``queries.py`` fetches the rows (database aggregation per local day where that is simple) and
hands them to the functions below, which fill one :class:`Report`. The page and ``data.json``
both render that report, so they always show the same numbers.

Definitions (the page repeats them under each chart):

- **Day**: the calendar day in ``settings.TIME_ZONE`` (Asia/Seoul) on which the call *started*; a
  turn, its latency and its cost belong to its call's day.
- **Volume**: ``ai`` = the AI answered (``ai_handled``); ``person`` = not the AI, but answered
  (``answered`` set or ``answered_by`` named); ``missed`` = ended without either. A call still
  ringing is in no bucket yet.
- **AI share**: ``ai / (person + ai + missed)``.
- **Latency**: the caller's turn carries the latency of the answer to it, in ms after the caller
  stopped speaking; the headline is ``first_rtp`` (first reply audio sent). Percentiles interpolate
  linearly between closest ranks (numpy's default, "type 7").
- **HITL rate**: calls with any HITL status / AI calls; **resolution**: resolved + noted vs unresolved.
- **Knowledge growth**: approved items by ``created`` date, cumulative from everything approved
  before the period (an item's approval time is not stored; an item approved today that was
  extracted last week counts from last week).
- **Estimated cost**: AI-call minutes (``billsec``, else ``duration_s``) × the STT and TTS prices
  per minute, plus LLM tokens × the price per 1,000 tokens, where tokens ≈ characters / 4 of the
  AI calls' turn texts (caller and AI). That is a lower bound: each LLM request also sends the
  system prompt, the history and the retrieved knowledge. Prices come from
  ``AIPBX_PRICE_STT_PER_MIN``, ``AIPBX_PRICE_TTS_PER_MIN`` and ``AIPBX_PRICE_LLM_PER_1K_TOKENS``
  (default 0: the local providers cost nothing).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
# The answer pipeline in order; other keys found in latency_ms follow, sorted.
STAGES = ("stt_final", "retrieval", "first_token", "tts_first_audio", "first_rtp")
HEADLINE_STAGE = "first_rtp"
CHARS_PER_TOKEN = 4
HITL_STATES = ("resolved", "noted", "unresolved")


@dataclass(frozen=True, slots=True)
class Period:
    """The ``days`` local calendar days ending with ``end`` (today), both included."""

    end: date
    days: int = DEFAULT_PERIOD

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """``[start 00:00, day after end 00:00)`` in ``tz``, for filtering timestamps."""
        return (
            datetime.combine(self.start, time.min, tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tz),
        )


@dataclass(frozen=True, slots=True)
class Prices:
    stt_per_min: float = 0.0
    tts_per_min: float = 0.0
    llm_per_1k_tokens: float = 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# --- volume -------------------------------------------------------------------------------------


@dataclass(slots=True)
class VolumeDay:
    day: date
    person: int = 0
    ai: int = 0
    missed: int = 0

    @property
    def total(self) -> int:
        return self.person + self.ai + self.missed

    @property
    def ai_share(self) -> float | None:
        return ratio(self.ai, self.total)


@dataclass(slots=True)
class Volume:
    days: list[VolumeDay]
    person: int
    ai: int
    missed: int
    total: int
    ai_share: float | None


def volume(dates: Sequence[date], rows: Iterable[Mapping[str, Any]]) -> Volume:
    """Per-day counts from rows ``{"day", "person", "ai", "missed"}`` (days without calls are zeros)."""
    by_day = {d: VolumeDay(d) for d in dates}
    for row in rows:
        bucket = by_day.get(row["day"])
        if bucket is not None:
            bucket.person += row["person"]
            bucket.ai += row["ai"]
            bucket.missed += row["missed"]
    days = list(by_day.values())
    person, ai, missed = (sum(getattr(d, k) for d in days) for k in ("person", "ai", "missed"))
    return Volume(days, person, ai, missed, person + ai + missed, ratio(ai, person + ai + missed))


# --- latency ------------------------------------------------------------------------------------


@dataclass(slots=True)
class LatencyDay:
    day: date
    p50: float | None
    p95: float | None
    samples: int


@dataclass(slots=True)
class Latency:
    stage: str
    days: list[LatencyDay]
    p50: float | None
    p95: float | None
    samples: int
    stages_p50: dict[str, float | None]


def latency(dates: Sequence[date], samples: Iterable[tuple[date, Mapping[str, Any]]]) -> Latency:
    """Percentiles of the caller turns' ``latency_ms``: per day for ``first_rtp``, p50 per stage."""
    per_day: dict[date, list[float]] = defaultdict(list)
    per_stage: dict[str, list[float]] = defaultdict(list)
    wanted = set(dates)
    for day, stages in samples:
        if day not in wanted:
            continue
        for name, value in stages.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                per_stage[name].append(float(value))
                if name == HEADLINE_STAGE:
                    per_day[day].append(float(value))
    days = [LatencyDay(d, percentile(per_day[d], 50), percentile(per_day[d], 95), len(per_day[d])) for d in dates]
    headline = per_stage.get(HEADLINE_STAGE, [])
    order = [*STAGES, *sorted(set(per_stage) - set(STAGES))]
    return Latency(
        HEADLINE_STAGE,
        days,
        percentile(headline, 50),
        percentile(headline, 95),
        len(headline),
        {name: percentile(per_stage.get(name, []), 50) for name in order},
    )


# --- HITL ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class HitlDay:
    day: date
    resolved: int = 0
    noted: int = 0
    unresolved: int = 0

    @property
    def total(self) -> int:
        return self.resolved + self.noted + self.unresolved


@dataclass(slots=True)
class Hitl:
    """HITL requests of the period. ``extra`` is where later sections go (the HITL app's
    operator response time, see ``queries.hitl_extra``); each entry is a name → numbers dict."""

    days: list[HitlDay]
    ai_calls: int
    requests: int
    rate: float | None
    resolved: int
    noted: int
    unresolved: int
    resolution: float | None
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)


def hitl(dates: Sequence[date], ai_calls: int, rows: Iterable[Mapping[str, Any]]) -> Hitl:
    """From rows ``{"day", "hitl_status", "n"}`` (only calls with a HITL status) and the AI-call count."""
    by_day = {d: HitlDay(d) for d in dates}
    for row in rows:
        bucket = by_day.get(row["day"])
        if bucket is not None and row["hitl_status"] in HITL_STATES:
            setattr(bucket, row["hitl_status"], getattr(bucket, row["hitl_status"]) + row["n"])
    days = list(by_day.values())
    resolved, noted, unresolved = (sum(getattr(d, k) for d in days) for k in HITL_STATES)
    requests = resolved + noted + unresolved
    return Hitl(
        days,
        ai_calls,
        requests,
        ratio(requests, ai_calls),
        resolved,
        noted,
        unresolved,
        ratio(resolved + noted, requests),
    )


# --- knowledge ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Knowledge:
    sources: list[str]
    cumulative: dict[str, list[int]]  # source -> one running total per day of the period
    total: list[int]
    added: int  # approved items created within the period


def knowledge(dates: Sequence[date], baseline: Mapping[str, int], rows: Iterable[Mapping[str, Any]]) -> Knowledge:
    """Cumulative approved items per source: ``baseline`` before the period plus rows ``{"day", "source", "n"}``."""
    added: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    wanted = set(dates)
    for row in rows:
        if row["day"] in wanted:
            added[row["source"]][row["day"]] += row["n"]
    sources = sorted(set(baseline) | set(added))
    cumulative: dict[str, list[int]] = {}
    for source in sources:
        running = baseline.get(source, 0)
        cumulative[source] = []
        for d in dates:
            running += added[source][d]
            cumulative[source].append(running)
    total = [sum(cumulative[s][i] for s in sources) for i in range(len(dates))]
    return Knowledge(sources, cumulative, total, sum(sum(days.values()) for days in added.values()))


# --- cost ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class CostDay:
    day: date
    minutes: float
    tokens: int
    stt: float
    tts: float
    llm: float

    @property
    def total(self) -> float:
        return self.stt + self.tts + self.llm


@dataclass(slots=True)
class Cost:
    days: list[CostDay]
    minutes: float
    tokens: int
    stt: float
    tts: float
    llm: float
    total: float
    prices: Prices


def cost(dates: Sequence[date], seconds: Mapping[date, float], chars: Mapping[date, int], prices: Prices) -> Cost:
    """Estimated provider cost per day from AI-call seconds and turn-text characters per day."""
    days = []
    for d in dates:
        minutes = seconds.get(d, 0.0) / 60
        tokens = math.ceil(chars.get(d, 0) / CHARS_PER_TOKEN)
        days.append(
            CostDay(
                d,
                minutes,
                tokens,
                minutes * prices.stt_per_min,
                minutes * prices.tts_per_min,
                tokens / 1000 * prices.llm_per_1k_tokens,
            )
        )
    stt, tts, llm = (sum(getattr(d, k) for d in days) for k in ("stt", "tts", "llm"))
    return Cost(days, sum(d.minutes for d in days), sum(d.tokens for d in days), stt, tts, llm, stt + tts + llm, prices)


# --- the report ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    period: Period
    extension: str
    volume: Volume
    latency: Latency
    hitl: Hitl
    knowledge: Knowledge
    cost: Cost

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO strings); the same numbers the page shows."""
        data = _jsonable(asdict(self))
        data["period"] = {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "days": self.period.days,
        }
        for key, days in (("volume", self.volume.days), ("hitl", self.hitl.days)):
            for out, day in zip(data[key]["days"], days, strict=True):
                out["total"] = day.total
        for out, day in zip(data["volume"]["days"], self.volume.days, strict=True):
            out["ai_share"] = day.ai_share
        for out, day in zip(data["cost"]["days"], self.cost.days, strict=True):
            out["total"] = day.total
        data["knowledge"]["days"] = [d.isoformat() for d in self.period.dates]
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
