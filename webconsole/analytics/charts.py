"""Charts as inline SVG, rendered on the server: no JavaScript, no CDN (the console runs offline).

Three shapes cover the analytics page: :func:`bar_chart`, :func:`stacked_bar_chart` and
:func:`line_chart`. Each returns a complete ``<svg role="img" aria-label=...>`` element (marked safe;
every label and title is escaped here) with a y axis of "nice" ticks from zero, x labels (thinned
out when there are many), a legend, and a ``<title>`` on every bar and point, which browsers show as a
tooltip. The page puts the same numbers in a table under each chart for screen readers.

Geometry: the plot area is ``PLOT_HEIGHT`` pixels high and a value ``v`` is drawn ``v / y_max``
of it, so bar heights are proportional to the values (the tests rely on that). Values of ``None``
are "no data": no bar, and a gap in a line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 260
LEFT = 56
RIGHT = 12
TOP = 30  # room for the legend
BOTTOM = 34
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
TICKS = 4  # intervals on the y axis
MAX_X_LABELS = 12
PALETTE = ("#2457d6", "#12805c", "#b54708", "#7a5af8", "#b42318", "#0e9384", "#667085")

Value = float | int | None
Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values, one value per x label."""

    name: str
    values: Sequence[Value]
    color: str | None = None


def plain(value: float) -> str:
    """Format a number without noise: integers as integers, others with up to two decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least ``raw`` (``raw`` > 0)."""
    exponent = math.floor(math.log10(raw))
    base = 10.0**exponent
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if factor * base >= raw * (1 - 1e-9):
            return factor * base
    return 10.0 * base  # unreachable: factor 10 always qualifies


def axis_max(values: Sequence[Value]) -> float:
    """The top of the y axis: ``TICKS`` nice steps covering the largest value (steps of 1 when all are 0).

    Counts (all values integers) get whole-number steps: "1.5 calls" is no tick label.
    """
    present = [v for v in values if v is not None]
    largest = max((float(v) for v in present), default=0.0)
    if largest <= 0:
        return float(TICKS)
    step = nice_step(largest / TICKS)
    if all(isinstance(v, int) for v in present):
        step = max(1.0, math.ceil(step))
    return step * TICKS


def bar_chart(
    labels: Sequence[str],
    values: Sequence[Value],
    *,
    title: str,
    name: str = "",
    fmt: Formatter = plain,
    color: str = PALETTE[0],
) -> SafeString:
    """One bar per label; ``name`` (the quantity) appears in the tooltips and the legend."""
    return stacked_bar_chart(labels, [Series(name or title, values, color)], title=title, fmt=fmt, legend=bool(name))


def stacked_bar_chart(
    labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Formatter = plain, legend: bool = True
) -> SafeString:
    """One bar per label, made of one segment per series, stacked bottom-up in ``series`` order."""
    _check_lengths(labels, series)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    y_max = axis_max(totals)
    parts = _frame(labels, y_max, fmt, slots=True)
    slot = PLOT_WIDTH / max(len(labels), 1)
    bar_width = slot * 0.7
    colors = _colors(series)
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_width) / 2
        if all(s.values[i] is None for s in series):
            continue
        base = 0.0
        segments = []
        for s, color in zip(series, colors, strict=True):
            value = float(s.values[i] or 0)
            height = value / y_max * PLOT_HEIGHT
            y = TOP + PLOT_HEIGHT - (base + value) / y_max * PLOT_HEIGHT
            tip = f"{label} · {s.name}: {fmt(value)}" if len(series) > 1 else f"{label}: {fmt(value)}"
            segments.append(
                f'<rect class="seg" x="{x:.2f}" y="{y:.2f}" width="{bar_width:.2f}" height="{height:.2f}" '
                f'fill="{color}" data-series="{escape(s.name)}" data-value="{value:g}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += value
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-total="{float(totals[i]):g}">'
            + "".join(segments)
            + "</g>"
        )
    if legend:
        parts.append(_legend(series, colors))
    return _svg(title, parts)


def line_chart(
    labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Formatter = plain, y_max: float | None = None
) -> SafeString:
    """One line per series over the labels; ``None`` values leave a gap."""
    _check_lengths(labels, series)
    top = y_max if y_max is not None else axis_max([v for s in series for v in s.values])
    parts = _frame(labels, top, fmt, slots=False)
    colors = _colors(series)
    for s, color in zip(series, colors, strict=True):
        points = [
            (_x_point(i, len(labels)), TOP + PLOT_HEIGHT - float(v) / top * PLOT_HEIGHT, labels[i], v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        for run in _runs(s.values):
            if len(run) > 1:
                coords = " ".join(
                    f"{_x_point(i, len(labels)):.2f},{TOP + PLOT_HEIGHT - float(s.values[i]) / top * PLOT_HEIGHT:.2f}"  # type: ignore[arg-type]
                    for i in run
                )
                parts.append(
                    f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" '
                    f'points="{coords}" data-series="{escape(s.name)}"/>'
                )
        for x, y, label, v in points:
            parts.append(
                f'<circle class="point" cx="{x:.2f}" cy="{y:.2f}" r="3" fill="{color}" '
                f'data-value="{float(v):g}"><title>{escape(f"{label} · {s.name}: {fmt(float(v))}")}'
                "</title></circle>"
            )
    parts.append(_legend(series, colors))
    return _svg(title, parts)


def _check_lengths(labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)} labels")


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def _runs(values: Sequence[Value]) -> list[list[int]]:
    """Indexes of the consecutive non-``None`` stretches of ``values``."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def _x_point(i: int, n: int) -> float:
    """Centre of slot ``i`` of ``n`` (lines and bars share the same x positions)."""
    slot = PLOT_WIDTH / max(n, 1)
    return LEFT + i * slot + slot / 2


def _frame(labels: Sequence[str], y_max: float, fmt: Formatter, *, slots: bool) -> list[str]:
    """Grid lines, y tick labels, the axes, and every k-th x label."""
    parts = []
    for k in range(TICKS + 1):
        value = y_max * k / TICKS
        y = TOP + PLOT_HEIGHT - PLOT_HEIGHT * k / TICKS
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.2f}" y2="{y:.2f}" stroke="#e4e7ec"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end" '
            f'font-size="11" fill="#667085">{escape(fmt(value))}</text>'
        )
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + PLOT_HEIGHT}" stroke="#98a2b3"/>')
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_HEIGHT}" '
        f'y2="{TOP + PLOT_HEIGHT}" stroke="#98a2b3"/>'
    )
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = _x_point(i, len(labels))
        parts.append(
            f'<text class="xlabel" x="{x:.2f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="11" fill="#667085">{escape(label)}</text>'
        )
    return parts


def _legend(series: Sequence[Series], colors: Sequence[str]) -> str:
    items = []
    x = LEFT
    for s, color in zip(series, colors, strict=True):
        items.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="17" font-size="12" fill="#1d2430">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return '<g class="legend">' + "".join(items) + "</g>"


def _svg(title: str, parts: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every interpolated text above went through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(parts) + "</svg>"
    )
