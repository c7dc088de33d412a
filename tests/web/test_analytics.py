"""The analytics page: numbers from seeded rows equal hand-computed values, permissions, SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from knowledge.models import KnowledgeItem
from webconsole.analytics import charts, queries, stats
from webconsole.calls.models import Call, Extension, Operator, Role, Turn

SEOUL = ZoneInfo("Asia/Seoul")
SVG = "{http://www.w3.org/2000/svg}"


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SEOUL)


_seq = iter(range(1, 1_000_000))


def make_call(
    callee: str,
    started: datetime,
    *,
    ai: bool = False,
    answered: bool = False,
    state: str = "ended",
    billsec: float | None = None,
    duration: float | None = None,
    hitl: str = "",
) -> Call:
    n = next(_seq)
    return Call.objects.create(
        call_id=f"c{n}",
        caller="010",
        callee=callee,
        started=started,
        state=state,
        ai_handled=ai,
        answered=started + timedelta(seconds=2) if answered or ai else None,
        answered_by="ai" if ai else (callee if answered else ""),
        billsec=billsec,
        duration_s=duration,
        hitl_status=hitl,
    )


def make_turn(call: Call, speaker: str, text: str = "", latency: dict | None = None) -> Turn:
    n = next(_seq)
    return Turn.objects.create(
        call=call, event_id=f"e{n}", t=float(n), speaker=speaker, text=text, latency_ms=latency or {}
    )


def make_item(owner: str, created: datetime, *, source: str = "manual", status: str = "approved") -> KnowledgeItem:
    item = KnowledgeItem.objects.create(owner=owner, text=f"fact {next(_seq)}", source=source, status=status)
    KnowledgeItem.objects.filter(pk=item.pk).update(created=created)  # created is auto_now_add
    return item


def operator_user(name: str, *numbers: str, role: str = Role.OPERATOR) -> User:
    user = User.objects.create_user(name, password="pw")
    operator = Operator.objects.create(user=user, role=role)
    for number in numbers:
        operator.extensions.add(Extension.objects.get_or_create(number=number)[0])
    return user


# --- pure computations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 95, 3.85),  # rank 3 × 0.95 = 2.85 → 3 + 0.85 × 1
        ([5, 1, 3], 0, 1),
        ([5, 1, 3], 100, 5),
        ([10], 95, 10),
    ],
)
def test_percentile_interpolates_between_closest_ranks(values: list[float], q: float, expected: float) -> None:
    assert stats.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert stats.percentile([], 50) is None


def test_period_is_the_last_n_local_days_including_today() -> None:
    period = stats.Period(end=date(2025, 3, 10), days=7)

    assert period.dates[0] == date(2025, 3, 4) and period.dates[-1] == date(2025, 3, 10)
    assert period.bounds(SEOUL) == (kst(2025, 3, 4), kst(2025, 3, 11))


# --- the report from the database --------------------------------------------------------------


@pytest.fixture
def seeded() -> None:
    """Calls of extension 1001 around midnight 2025-03-09/10 in Seoul (both UTC dates are the 9th)."""
    c1 = make_call("1001", kst(2025, 3, 9, 23, 59, 59), ai=True, billsec=120, duration=125, hitl="resolved")
    make_turn(
        c1,
        "caller",
        "a" * 40,
        {"stt_final": 100, "retrieval": 150, "first_token": 400, "tts_first_audio": 600, "first_rtp": 700},
    )
    make_turn(c1, "ai", "b" * 80)
    c2 = make_call("1001", kst(2025, 3, 10, 0, 0, 0), ai=True, duration=60, hitl="unresolved")
    for first_rtp in (500, 1100, 900):
        make_turn(c2, "caller", "c" * 20, {"first_rtp": first_rtp})
    make_turn(c2, "caller", "", {})  # a turn without measurements counts for nothing but its text
    c3 = make_call("1001", kst(2025, 3, 10, 9), answered=True, duration=300)
    make_turn(c3, "callee", "a person's words are not LLM tokens")
    make_call("1001", kst(2025, 3, 10, 10))  # missed
    make_call("1001", kst(2025, 3, 10, 11), state="ringing")  # no outcome yet
    make_call("1001", kst(2025, 3, 10, 12), ai=True, billsec=30, duration=31)
    before = make_call("1001", kst(2025, 3, 3, 23, 59), ai=True, billsec=600, hitl="resolved")
    make_turn(before, "caller", "x" * 400, {"first_rtp": 99_999})
    make_call("1001", kst(2025, 3, 11, 0, 0, 1), ai=True, billsec=600)  # after the period
    make_call("1002", kst(2025, 3, 10, 8), ai=True, billsec=600, hitl="unresolved")  # another owner

    make_item("1001", kst(2025, 3, 1), source="manual")
    make_item("1001", kst(2025, 3, 9, 23, 30), source="call")
    make_item("1001", kst(2025, 3, 10, 0, 30), source="call")
    make_item("1001", kst(2025, 3, 10, 1), source="manual", status="pending")
    make_item("1001", kst(2025, 3, 11, 0, 0, 1), source="import")
    make_item("1002", kst(2025, 3, 10, 1), source="manual")


def report_for_1001(prices: stats.Prices | None = None) -> stats.Report:
    return queries.build_report(
        Call.objects.filter(callee="1001"),
        KnowledgeItem.objects.filter(owner="1001"),
        stats.Period(end=date(2025, 3, 10), days=7),
        price=prices or stats.Prices(),
    )


@pytest.mark.django_db
def test_volume_buckets_by_seoul_day_across_midnight(seeded: None) -> None:
    volume = report_for_1001().volume

    by_day = {d.day: (d.person, d.ai, d.missed) for d in volume.days}
    assert len(volume.days) == 7
    assert by_day[date(2025, 3, 9)] == (0, 1, 0)  # 23:59:59 KST is still the 9th
    assert by_day[date(2025, 3, 10)] == (1, 2, 1)  # 00:00:00 KST is the 10th (UTC: still the 9th)
    assert by_day[date(2025, 3, 4)] == (0, 0, 0)
    assert (volume.person, volume.ai, volume.missed, volume.total) == (1, 3, 1, 5)
    assert volume.ai_share == pytest.approx(3 / 5)
    assert volume.days[-1].ai_share == pytest.approx(2 / 4)
    assert volume.days[0].ai_share is None


@pytest.mark.django_db
def test_latency_percentiles_per_day_and_per_stage(seeded: None) -> None:
    latency = report_for_1001().latency

    by_day = {d.day: (d.p50, d.p95, d.samples) for d in latency.days}
    assert by_day[date(2025, 3, 9)] == (700, 700, 1)
    p50, p95, samples = by_day[date(2025, 3, 10)]
    assert (p50, samples) == (900, 3)
    assert p95 == pytest.approx(1080)  # [500, 900, 1100]: rank 1.9 → 900 + 0.9 × 200
    assert by_day[date(2025, 3, 8)] == (None, None, 0)
    assert latency.p50 == pytest.approx(800)  # [500, 700, 900, 1100]: rank 1.5
    assert latency.p95 == pytest.approx(1070)  # rank 2.85 → 900 + 0.85 × 200
    assert latency.samples == 4
    assert latency.stages_p50 == {
        "stt_final": 100,
        "retrieval": 150,
        "first_token": 400,
        "tts_first_audio": 600,
        "first_rtp": pytest.approx(800),
    }


@pytest.mark.django_db
def test_hitl_rate_and_resolution(seeded: None) -> None:
    hitl = report_for_1001().hitl

    assert (hitl.ai_calls, hitl.requests) == (3, 2)
    assert hitl.rate == pytest.approx(2 / 3)
    assert (hitl.resolved, hitl.noted, hitl.unresolved) == (1, 0, 1)
    assert hitl.resolution == pytest.approx(1 / 2)
    by_day = {d.day: (d.resolved, d.noted, d.unresolved) for d in hitl.days}
    assert by_day[date(2025, 3, 9)] == (1, 0, 0)
    assert by_day[date(2025, 3, 10)] == (0, 0, 1)


@pytest.mark.django_db
def test_knowledge_growth_is_cumulative_per_source(seeded: None) -> None:
    growth = report_for_1001().knowledge

    assert growth.sources == ["call", "manual"]
    assert growth.cumulative["manual"] == [1, 1, 1, 1, 1, 1, 1]  # approved before the period
    assert growth.cumulative["call"] == [0, 0, 0, 0, 0, 1, 2]
    assert growth.total == [1, 1, 1, 1, 1, 2, 3]
    assert growth.added == 2


@pytest.mark.django_db
def test_cost_from_ai_minutes_and_characters(seeded: None) -> None:
    cost = report_for_1001(stats.Prices(stt_per_min=0.01, tts_per_min=0.02, llm_per_1k_tokens=0.5)).cost

    by_day = {d.day: d for d in cost.days}
    ninth, tenth = by_day[date(2025, 3, 9)], by_day[date(2025, 3, 10)]
    assert ninth.minutes == pytest.approx(2.0)  # billsec 120 wins over duration 125
    assert ninth.tokens == 30  # (40 + 80) characters / 4
    assert tenth.minutes == pytest.approx(1.5)  # duration 60 (no billsec) + billsec 30
    assert tenth.tokens == 15  # 3 × 20 characters / 4; the person-answered call is not counted
    assert (ninth.stt, ninth.tts, ninth.llm) == pytest.approx((0.02, 0.04, 0.015))
    assert (tenth.stt, tenth.tts, tenth.llm) == pytest.approx((0.015, 0.03, 0.0075))
    assert cost.total == pytest.approx(0.1275)
    assert (cost.minutes, cost.tokens) == (pytest.approx(3.5), 45)


@pytest.mark.django_db
def test_default_prices_are_zero(seeded: None) -> None:
    assert queries.prices() == stats.Prices(0.0, 0.0, 0.0)
    assert report_for_1001(queries.prices()).cost.total == 0


# --- views and permissions ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/analytics/", "/analytics/data.json"])
def test_anonymous_is_redirected_to_login(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/analytics/")


@pytest.fixture
def recent_calls(moved_clock: datetime) -> None:
    """Three calls and two items earlier today (the console's local day), whatever the time of day."""
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    earlier, earliest = now - (now - midnight) / 3, now - 2 * (now - midnight) / 3
    make_call("1001", earlier, ai=True, billsec=60, hitl="noted")
    make_call("1002", earlier, ai=True, billsec=60, hitl="unresolved")
    make_call("1002", earliest, answered=True)
    make_item("1001", earlier)
    make_item("1002", earlier)


@pytest.mark.django_db
def test_operator_sees_only_their_extensions(client: Client, recent_calls: None) -> None:
    # given an operator of 1001 and an admin
    client.force_login(operator_user("op", "1001"))

    # when
    mine = client.get("/analytics/data.json").json()

    # then only extension 1001 counts
    assert (mine["volume"]["total"], mine["volume"]["ai"]) == (1, 1)
    assert (mine["hitl"]["requests"], mine["hitl"]["noted"], mine["hitl"]["unresolved"]) == (1, 1, 0)
    assert mine["knowledge"]["total"][-1] == 1
    assert mine["cost"]["minutes"] == pytest.approx(1.0)
    assert mine["period"]["days"] == 30 and len(mine["volume"]["days"]) == 30

    client.force_login(operator_user("boss", role=Role.ADMIN))
    everything = client.get("/analytics/data.json").json()
    assert everything["volume"]["total"] == 3
    assert everything["knowledge"]["total"][-1] == 2
    only_1002 = client.get("/analytics/data.json?extension=1002&days=7").json()
    assert (only_1002["volume"]["total"], only_1002["period"]["days"]) == (2, 7)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/analytics/?extension=1002", "/analytics/data.json?extension=1002"])
def test_operator_cannot_ask_for_another_extension(client: Client, recent_calls: None, url: str) -> None:
    client.force_login(operator_user("op", "1001"))

    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_operator_page_excludes_other_extensions(client: Client, recent_calls: None) -> None:
    client.force_login(operator_user("op", "1001"))

    page = client.get("/analytics/").content.decode()

    assert re.search(r'id="total-calls">1<', page)
    assert '<option value="1002"' not in page


@pytest.mark.django_db
def test_page_renders_with_no_data_at_all(client: Client) -> None:
    client.force_login(operator_user("boss", role=Role.ADMIN))

    response = client.get("/analytics/", headers={"accept-language": "en"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "No HITL requests yet." in page
    assert 'id="total-calls">0<' in page
    assert page.count('role="img"') >= 4
    data = client.get("/analytics/data.json").json()
    assert data["volume"]["ai_share"] is None and data["latency"]["p50"] is None
    assert data["hitl"]["rate"] is None and data["cost"]["total"] == 0


@pytest.mark.django_db
def test_page_volume_chart_has_one_bar_per_day(client: Client, recent_calls: None) -> None:
    client.force_login(operator_user("boss", role=Role.ADMIN))

    page = client.get("/analytics/?days=7").content.decode()

    svg = parse_svg(re.search(r'<figure class="chart" id="chart-volume">\s*(<svg.*?</svg>)', page, re.S).group(1))
    bars = svg.findall(f"{SVG}g[@class='bar']")
    assert len(bars) == 7
    assert bars[-1].get("data-total") == "3"
    assert "HITL" in page and "No HITL requests yet." not in page
    assert '<a href="/analytics/">Analytics</a>' in page


# --- charts -------------------------------------------------------------------------------------


def parse_svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("aria-label")
    return root


def test_bar_chart_draws_one_bar_per_label_with_proportional_heights() -> None:
    svg = parse_svg(charts.bar_chart(["03-01", "03-02", "03-03", "03-04"], [2, 4, 1, 0], title="Calls"))

    rects = svg.findall(f"{SVG}g[@class='bar']/{SVG}rect")
    heights = [float(r.get("height")) for r in rects]
    assert len(rects) == 4
    assert heights[1] == pytest.approx(charts.PLOT_HEIGHT)  # 4 is the top of a 0..4 axis
    assert heights[0] == pytest.approx(heights[1] / 2)
    assert heights[2] == pytest.approx(heights[1] / 4)
    assert heights[3] == 0
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 6) for r in rects}
    assert bottoms == {charts.TOP + charts.PLOT_HEIGHT}  # all stand on the x axis
    assert [r.find(f"{SVG}title").text for r in rects] == ["03-01: 2", "03-02: 4", "03-03: 1", "03-04: 0"]
    assert svg.find(f"{SVG}title").text == "Calls"


def test_stacked_bar_segments_stack_to_the_total() -> None:
    svg = parse_svg(
        charts.stacked_bar_chart(
            ["a", "b"], [charts.Series("AI", [3, 1]), charts.Series("Person", [1, 0])], title="Volume"
        )
    )

    bars = svg.findall(f"{SVG}g[@class='bar']")
    first = [float(r.get("height")) for r in bars[0].findall(f"{SVG}rect")]
    second = [float(r.get("height")) for r in bars[1].findall(f"{SVG}rect")]
    assert len(bars) == 2
    assert sum(first) == pytest.approx(4 * sum(second))
    assert first[0] == pytest.approx(3 * first[1])
    ai_top = float(bars[0].findall(f"{SVG}rect")[0].get("y"))
    person = bars[0].findall(f"{SVG}rect")[1]
    assert float(person.get("y")) + float(person.get("height")) == pytest.approx(ai_top)  # stacked on top
    assert [t.text for t in svg.iter(f"{SVG}text") if t.text in ("AI", "Person")] == ["AI", "Person"]  # legend


def test_line_chart_leaves_gaps_for_missing_values() -> None:
    svg = parse_svg(
        charts.line_chart(
            ["1", "2", "3", "4", "5"], [charts.Series("p50", [100, 200, None, 300, 400])], title="Latency"
        )
    )

    assert len(svg.findall(f"{SVG}polyline")) == 2
    points = svg.findall(f"{SVG}circle")
    assert [p.get("data-value") for p in points] == ["100", "200", "300", "400"]
    ys = [float(p.get("cy")) for p in points]
    assert ys == sorted(ys, reverse=True)  # larger values are higher up
    assert points[0].find(f"{SVG}title").text == "1 · p50: 100"


def test_chart_text_is_escaped() -> None:
    svg = parse_svg(charts.bar_chart(['<script>"x"</script>'], [1], title="a & b <c>"))

    assert svg.get("aria-label") == "a & b <c>"
    assert svg.find(f"{SVG}g/{SVG}rect/{SVG}title").text == '<script>"x"</script>: 1'


def test_charts_reject_mismatched_series() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.line_chart(["a", "b", "c"], [charts.Series("s", [1, 2])], title="t")


@pytest.mark.parametrize(
    ("largest", "top"),
    [
        (0, 4),
        (4, 4),
        (5, 8),
        (9, 12),
        (9.0, 10),
        (0.3, 0.4),
        (1234, 2000),
        (1234.0, 2000),
        (2, 4),
        (2.0, 2),
        (1.0, 1),  # counts step by whole numbers; amounts may use fractions
    ],
)
def test_axis_top_is_four_nice_steps(largest: float, top: float) -> None:
    assert charts.axis_max([largest]) == pytest.approx(top)
