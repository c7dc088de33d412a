"""Fetch the rows behind the analytics report: the database counts per local day, Python the rest.

Counts and sums are grouped by ``TruncDate(..., tzinfo=settings.TIME_ZONE)`` in PostgreSQL;
percentiles need the individual values, so the period's caller turns (and only those) are read
and handed to :func:`stats.latency`. The querysets passed in are already narrowed to what the
user may see (``access``) and to the chosen extension; nothing here widens them.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Length, TruncDate

from knowledge.models import KnowledgeItem, Status
from webconsole.analytics import stats
from webconsole.calls.models import Call, CallState, HitlStatus, Turn


def local_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def prices() -> stats.Prices:
    return stats.Prices(
        stt_per_min=float(getattr(settings, "AIPBX_PRICE_STT_PER_MIN", 0.0)),
        tts_per_min=float(getattr(settings, "AIPBX_PRICE_TTS_PER_MIN", 0.0)),
        llm_per_1k_tokens=float(getattr(settings, "AIPBX_PRICE_LLM_PER_1K_TOKENS", 0.0)),
    )


def build_report(
    calls: QuerySet[Call],
    items: QuerySet[KnowledgeItem],
    period: stats.Period,
    *,
    extension: str = "",
    price: stats.Prices | None = None,
    user: Any = None,
) -> stats.Report:
    """The report for ``period`` over ``calls`` and ``items`` (both already filtered for the user)."""
    tz = local_tz()
    since, until = period.bounds(tz)
    dates = period.dates
    in_period = calls.filter(started__gte=since, started__lt=until)
    by_day = in_period.annotate(day=TruncDate("started", tzinfo=tz)).values("day")

    answered = Q(answered__isnull=False) | ~Q(answered_by="")
    volume_rows = by_day.annotate(
        ai=Count("id", filter=Q(ai_handled=True)),
        person=Count("id", filter=Q(ai_handled=False) & answered),
        missed=Count("id", filter=Q(ai_handled=False, state=CallState.ENDED) & ~answered),
    ).order_by("day")

    caller_turns = Turn.objects.filter(call__in=in_period, speaker="caller").exclude(latency_ms={})
    samples = caller_turns.annotate(day=TruncDate("call__started", tzinfo=tz)).values_list("day", "latency_ms")

    ai_calls = in_period.filter(ai_handled=True)
    hitl_rows = (
        in_period.exclude(hitl_status=HitlStatus.NONE)
        .annotate(day=TruncDate("started", tzinfo=tz))
        .values("day", "hitl_status")
        .annotate(n=Count("id"))
        .order_by()
    )
    hitl = stats.hitl(dates, ai_calls.count(), hitl_rows)
    hitl.extra.update(hitl_extra(user, since, until, extension))

    approved = items.filter(status=Status.APPROVED)
    baseline = {
        row["source"]: row["n"]
        for row in approved.filter(created__lt=since).values("source").annotate(n=Count("id")).order_by()
    }
    growth_rows = (
        approved.filter(created__gte=since, created__lt=until)
        .annotate(day=TruncDate("created", tzinfo=tz))
        .values("day", "source")
        .annotate(n=Count("id"))
        .order_by()
    )

    seconds = {
        row["day"]: row["s"] or 0.0
        for row in ai_calls.annotate(day=TruncDate("started", tzinfo=tz))
        .values("day")
        .annotate(s=Sum(Coalesce(F("billsec"), F("duration_s"), Value(0.0), output_field=FloatField())))
        .order_by()
    }
    chars = {
        row["day"]: row["c"] or 0
        for row in Turn.objects.filter(call__in=ai_calls)
        .annotate(day=TruncDate("call__started", tzinfo=tz))
        .values("day")
        .annotate(c=Sum(Length("text")))
        .order_by()
    }

    return stats.Report(
        period=period,
        extension=extension,
        volume=stats.volume(dates, volume_rows),
        latency=stats.latency(dates, samples.iterator()),
        hitl=hitl,
        knowledge=stats.knowledge(dates, baseline, growth_rows),
        cost=stats.cost(dates, seconds, chars, price or prices()),
    )


def hitl_extra(user: Any, since: Any, until: Any, extension: str) -> dict[str, dict[str, Any]]:
    """Sections the HITL app adds (operator response time), once it is installed.

    The HITL app provides ``webconsole.hitl.queries.analytics(user, since, until, extension)``
    returning ``{section name: {label: number}}``; the page shows each as a card row.
    """
    try:
        from webconsole.hitl.queries import analytics  # type: ignore[import-not-found]
    except ImportError:
        return {}
    return dict(analytics(user, since, until, extension))
