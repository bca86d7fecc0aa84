"""The reports' charts, drawn on the server as SVG geometry (the page has no script and
its policy allows no inline style: colours come from classes in reports.css).

A chart is bars over a list of labels: stacked (parts of one count) or side by side
(a median and its 90th percentile). The template draws what `Chart` holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from agents.reports import Report, Row, duration_text

WIDTH = 720
HEIGHT = 260
LEFT = 64  # room for the value axis' labels
RIGHT = 8
TOP = 12
BOTTOM = 44  # room for the labels under the bars
MAX_LABELS = 10  # on the axis; a phone shows every other one (reports.css)


@dataclass(frozen=True)
class Series:
    css: str  # the class that colours it (reports.css)
    label: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str  # shown on hover: "2026-11-30, keyword trigger: 4"


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str  # what the chart shows, in words (for screen readers)
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Label]
    legend: list[tuple[str, str]]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


def _scale(top: float) -> tuple[float, list[float]]:
    """A round top for the axis and its ticks (0, step, 2 step, …)."""
    if top <= 0:
        return 1.0, [0.0, 1.0]
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(top / step)
    return steps * step, [n * step for n in range(steps + 1)]


def _x_labels(labels: Sequence[str], slot: float) -> list[Label]:
    every = max(1, math.ceil(len(labels) / MAX_LABELS))
    return [
        Label(LEFT + slot * (n + 0.5), _short(text))
        for n, text in enumerate(labels)
        if n % every == 0
    ]


def _short(text: str) -> str:
    return text if len(text) <= 12 else text[:11] + "…"


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool,
    value_text: Callable[[float], str] = lambda v: f"{v:g}",
    tick_text: Callable[[float], str] | None = None,
    top: float | None = None,
) -> Chart:
    """Bars per label: the series stacked in one bar, or side by side."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = HEIGHT - BOTTOM
    count = max(1, len(labels))
    slot = plot_width / count
    if stacked:
        tallest = max(
            (sum(s.values[n] or 0 for s in series) for n in range(len(labels))), default=0
        )
    else:
        tallest = max((v or 0 for s in series for v in s.values), default=0)
    if top is not None:  # a fixed scale (CSAT's 1 to 5): a tick per unit
        axis_top, ticks = top, [float(n) for n in range(int(top) + 1)]
    else:
        axis_top, ticks = _scale(tallest)
    bars: list[Bar] = []
    gap = slot * 0.2 if slot > 4 else 0
    for n, label in enumerate(labels):
        x = LEFT + slot * n + gap / 2
        inner = slot - gap
        floor: float = baseline
        for position, part in enumerate(series):
            value = part.values[n]
            if not value:
                continue
            height = plot_height * value / axis_top
            tip = f"{label}, {part.label}: {value_text(value)}"
            if stacked:
                floor -= height
                bars.append(Bar(x, floor, inner, height, part.css, tip))
            else:
                width = inner / len(series)
                bars.append(
                    Bar(x + width * position, baseline - height, width, height, part.css, tip)
                )
    return Chart(
        title=title,
        summary=f"{title}: "
        + "; ".join(
            f"{label} "
            + ", ".join(f"{s.label} {value_text(s.values[n] or 0)}" for s in series if s.values[n])
            for n, label in enumerate(labels)
            if any(s.values[n] for s in series)
        ),
        bars=bars,
        ticks=[
            Tick(baseline - plot_height * value / axis_top, (tick_text or value_text)(value))
            for value in ticks
        ],
        labels=_x_labels(labels, slot),
        legend=[(s.css, s.label) for s in series],
        empty=not bars,
    )


def _day_label(row: Row) -> str:
    """A day as the axis shows it ("Nov 3"); other rows by their name."""
    return f"{row.key:%b} {row.key.day}" if isinstance(row.key, date) else row.label


def _durations_chart(
    title: str, labels: list[str], medians: list[float | None], p90s: list[float | None]
) -> Chart:
    """Median and p90 side by side, in minutes, or hours when they are long (the unit in
    the title: the axis keeps to numbers, which fit a phone)."""
    longest = max((value or 0 for value in [*medians, *p90s]), default=0)
    unit, name = (3600, "hours") if longest > 3 * 3600 else (60, "minutes")

    def scaled(values: list[float | None]) -> list[float | None]:
        return [None if value is None else value / unit for value in values]

    return bar_chart(
        f"{title} ({name})",
        labels,
        [
            Series("median", "median", scaled(medians)),
            Series("p90", "90th percentile", scaled(p90s)),
        ],
        stacked=False,
        value_text=lambda value: duration_text(value * unit),
        tick_text=lambda value: f"{value:g}",
    )


def report_charts(report: Report) -> list[Chart]:
    """The report page's charts, over its rows (days, pages, teams or agents)."""
    labels = [_day_label(row) for row in report.rows]
    rows = report.rows

    def count(value: float) -> str:
        return f"{value:g}"

    charts = [
        bar_chart(
            "Handovers, by what started them",
            labels,
            [
                Series(
                    f"trigger-{value or 'unknown'}",
                    label,
                    [r.by_trigger.get(value, 0) for r in rows],
                )
                for value, label in report.triggers
            ],
            stacked=True,
            value_text=count,
        ),
        _durations_chart(
            "First response time",
            labels,
            [r.first_response.median for r in rows],
            [r.first_response.p90 for r in rows],
        ),
        _durations_chart(
            "Resolution time",
            labels,
            [r.resolution.median for r in rows],
            [r.resolution.p90 for r in rows],
        ),
        bar_chart(
            "Take-backs, lapses and failed sends",
            labels,
            [
                Series("takeback-bot", "taken back by the bot", [r.takebacks_bot for r in rows]),
                Series(
                    "takeback-inbox",
                    "taken back by the Page Inbox",
                    [r.takebacks_page_inbox for r in rows],
                ),
                Series("lapse", "lapsed", [r.lapses for r in rows]),
                Series("failed", "failed sends", [r.failed_sends for r in rows]),
            ],
            stacked=True,
            value_text=count,
        ),
        bar_chart(
            "CSAT, average score (1 to 5)",
            labels,
            [Series("csat", "average score", [r.csat_average for r in rows])],
            stacked=False,
            value_text=lambda v: f"{v:.2f}",
            tick_text=count,
            top=5,
        ),
        bar_chart(
            f"Busiest hours ({report.zone})",
            [f"{hour:02d}:00" for hour in range(24)],
            [
                Series("messages", "customer messages", report.hours_messages),
                Series("handovers", "handovers", report.hours_handovers),
            ],
            stacked=False,
            value_text=count,
        ),
    ]
    return charts
