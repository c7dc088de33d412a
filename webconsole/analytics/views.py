"""The analytics page and its JSON twin: one report, same filters, same permission rules.

Both need a login; the numbers cover only the calls and knowledge of the user's extensions
(``access``), and asking for an extension outside them answers 404, as everywhere in the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy, ngettext_lazy
from django.views.decorators.http import require_GET

from knowledge.models import KnowledgeItem
from webconsole.analytics import charts, queries, stats
from webconsole.calls import access


class AnalyticsFilter(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(d, ngettext_lazy("%(n)d day", "%(n)d days", d) % {"n": d}) for d in stats.PERIODS],
        coerce=int,
        required=False,
        empty_value=stats.DEFAULT_PERIOD,
    )
    extension = forms.CharField(required=False, max_length=16)


def _report(request: HttpRequest) -> tuple[AnalyticsFilter, stats.Report]:
    form = AnalyticsFilter(request.GET)
    days, extension = stats.DEFAULT_PERIOD, ""
    if form.is_valid():
        days = form.cleaned_data["days"]
        extension = form.cleaned_data["extension"].strip()
    if extension and not access.can_see_extension(request.user, extension):
        raise Http404("No such extension.")
    calls = access.calls_for(request.user)
    items = access.filter_by_owner(KnowledgeItem.objects.all(), request.user, "owner")
    if extension:
        calls = calls.filter(callee=extension)
        items = items.filter(owner=extension)
    period = stats.Period(end=timezone.localdate(), days=days)
    return form, queries.build_report(calls, items, period, extension=extension, user=request.user)


@login_required
@require_GET
def data_json(request: HttpRequest) -> JsonResponse:
    _, report = _report(request)
    return JsonResponse(report.as_dict())


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the page and the table (header row, rows) that repeats its numbers."""

    id: str
    title: str
    svg: SafeString
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form, report = _report(request)
    return render(
        request,
        "analytics/index.html",
        {
            "form": form,
            "report": report,
            "charts": build_charts(report),
            "hitl_extra": _translated_extra(report.hitl.extra),
            "periods": stats.PERIODS,
            "days": report.period.days,
            "extension": report.extension,
            "extensions": access.extensions_for(request.user),
            "time_zone": settings.TIME_ZONE,
        },
    )


def _translated_extra(extra: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """The HITL app's sections for the page: their names and labels are msgids (``gettext_noop`` there),
    kept in English in the JSON twin and translated here."""
    return {
        gettext(name): {gettext(label): value for label, value in numbers.items()} for name, numbers in extra.items()
    }


#: The turn's latency stages (``stats.STAGES``), each measured from the end of the caller's speech.
STAGE_LABELS = {
    "stt_final": gettext_lazy("speech recognised"),
    "retrieval": gettext_lazy("knowledge searched"),
    "first_token": gettext_lazy("first word of the reply"),
    "tts_first_audio": gettext_lazy("first reply audio made"),
    "first_rtp": gettext_lazy("first reply audio sent"),
}


def _stage(name: str) -> str:
    label = STAGE_LABELS.get(name)
    return f"{label} ({name})" if label is not None else name


def _source(name: str) -> str:
    """A knowledge source's label (``call`` -> "Call"), or the name itself if it is none of them."""
    from knowledge.models import Source

    return str(Source(name).label) if name in Source.values else name


def _label(day: date) -> str:
    return day.strftime("%m-%d")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _pct(value: float | None) -> str:
    return "—" if value is None else charts.percent(value)


def _money(value: float) -> str:
    """Up to four decimals (per-day costs are small), no trailing zeros."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def build_charts(report: stats.Report) -> dict[str, Chart]:
    """Every chart of the page, keyed by section."""
    labels = [_label(d) for d in report.period.dates]
    iso = [d.isoformat() for d in report.period.dates]
    volume, latency, hitl, growth, cost = report.volume, report.latency, report.hitl, report.knowledge, report.cost
    found: dict[str, Chart] = {}

    found["volume"] = Chart(
        "volume",
        gettext("Calls per day"),
        charts.stacked_bar_chart(
            labels,
            [
                charts.Series(gettext("By a person"), [d.person for d in volume.days]),
                charts.Series(gettext("By the AI"), [d.ai for d in volume.days]),
                charts.Series(gettext("Missed"), [d.missed for d in volume.days], charts.PALETTE[4]),
            ],
            title=gettext("Calls per day: answered by a person, by the AI, missed"),
        ),
        [gettext("Day"), gettext("By a person"), gettext("By the AI"), gettext("Missed"), gettext("Total")],
        [[i, str(d.person), str(d.ai), str(d.missed), str(d.total)] for i, d in zip(iso, volume.days, strict=True)],
    )

    found["ai_share"] = Chart(
        "ai_share",
        gettext("Share answered by the AI"),
        charts.line_chart(
            labels,
            [charts.Series(gettext("AI share"), [d.ai_share for d in volume.days])],
            title=gettext("Share of calls answered by the AI per day"),
            fmt=charts.percent,
            y_max=1.0,
        ),
        [gettext("Day"), gettext("AI share"), gettext("Calls")],
        [[i, _pct(d.ai_share), str(d.total)] for i, d in zip(iso, volume.days, strict=True)],
        gettext("Days without calls are left out."),
    )

    found["latency"] = Chart(
        "latency",
        gettext("Answer latency (first reply audio)"),
        charts.line_chart(
            labels,
            [
                charts.Series("p50", [d.p50 for d in latency.days]),
                charts.Series("p95", [d.p95 for d in latency.days], charts.PALETTE[2]),
            ],
            title=gettext("Answer latency per day, first_rtp p50 and p95 in ms"),
        ),
        [gettext("Day"), "p50", "p95", gettext("Turns")],
        [[i, _ms(d.p50), _ms(d.p95), str(d.samples)] for i, d in zip(iso, latency.days, strict=True)],
        gettext("Milliseconds from the end of the caller's speech to the first reply audio sent (first_rtp)."),
    )

    stage_names = list(latency.stages_p50)
    found["stages"] = Chart(
        "stages",
        gettext("Latency by stage (p50)"),
        charts.bar_chart(
            [_stage(s) for s in stage_names],
            [latency.stages_p50[s] for s in stage_names],
            title=gettext("Median latency of each stage in ms"),
            name=gettext("p50 (ms)"),
        ),
        [gettext("Stage"), "p50"],
        [[_stage(s), _ms(latency.stages_p50[s])] for s in stage_names],
        gettext("Each stage is measured from the end of the caller's speech, so later stages include earlier ones."),
    )

    found["hitl"] = Chart(
        "hitl",
        gettext("Operator requests (HITL) per day"),
        charts.stacked_bar_chart(
            labels,
            [
                charts.Series(gettext("Resolved"), [d.resolved for d in hitl.days], charts.PALETTE[1]),
                charts.Series(gettext("Noted"), [d.noted for d in hitl.days], charts.PALETTE[2]),
                charts.Series(gettext("Unresolved"), [d.unresolved for d in hitl.days], charts.PALETTE[4]),
            ],
            title=gettext("Calls with an operator request per day, by resolution"),
        ),
        [gettext("Day"), gettext("Resolved"), gettext("Noted"), gettext("Unresolved")],
        [[i, str(d.resolved), str(d.noted), str(d.unresolved)] for i, d in zip(iso, hitl.days, strict=True)],
    )

    found["knowledge"] = Chart(
        "knowledge",
        gettext("Knowledge growth"),
        charts.line_chart(
            labels,
            [charts.Series(_source(s), growth.cumulative[s]) for s in growth.sources]
            or [charts.Series(gettext("approved"), growth.total)],
            title=gettext("Approved knowledge items, cumulative, by source"),
        ),
        [gettext("Day"), *(_source(s) for s in growth.sources), gettext("Total")],
        [[i, *(str(growth.cumulative[s][n]) for s in growth.sources), str(growth.total[n])] for n, i in enumerate(iso)],
        gettext("Counted by the day an item was created; includes everything approved before the period."),
    )

    found["cost"] = Chart(
        "cost",
        gettext("Estimated provider cost"),
        charts.stacked_bar_chart(
            labels,
            [
                charts.Series("STT", [d.stt for d in cost.days]),
                charts.Series("TTS", [d.tts for d in cost.days], charts.PALETTE[1]),
                charts.Series("LLM", [d.llm for d in cost.days], charts.PALETTE[3]),
            ],
            title=gettext("Estimated provider cost per day"),
            fmt=_money,
        ),
        [gettext("Day"), gettext("AI minutes"), gettext("LLM tokens (est.)"), "STT", "TTS", "LLM", gettext("Total")],
        [
            [i, f"{d.minutes:.1f}", str(d.tokens), _money(d.stt), _money(d.tts), _money(d.llm), _money(d.total)]
            for i, d in zip(iso, cost.days, strict=True)
        ],
    )
    return found
