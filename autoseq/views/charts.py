"""Chart geometry for the analytics page: a stacked bar per day, drawn as inline SVG by
``templates/analytics/_chart.html``. Presentation only: it reads the service's ``Day`` figures."""

from __future__ import annotations

from dataclasses import dataclass

from ..services.analytics import Day


@dataclass
class Bar:
    x: float
    width: float
    y_ok: float
    h_ok: float
    y_failed: float
    h_failed: float
    y_queued: float
    h_queued: float
    day: Day


@dataclass
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    labels: list[tuple[float, str]]
    empty: bool


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def chart(days: list[Day], width: int = 760, height: int = 220) -> Chart:
    """The geometry of a stacked bar chart (succeeded, failed, queued) per day, for inline SVG."""
    left, top, bottom, right = 44, 10, 24, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d.counts.total for d in days), default=0)
    ymax = _nice_max(peak)
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.8, 1)

    def h(n: int) -> float:
        return round(plot_h * n / ymax, 2)

    bars = []
    for i, d in enumerate(days):
        x = round(left + i * slot + (slot - bar_w) / 2, 2)
        h_ok, h_failed, h_queued = h(d.counts.succeeded), h(d.counts.failed), h(d.counts.queued)
        base = top + plot_h
        y_ok = base - h_ok
        y_failed = y_ok - h_failed
        y_queued = y_failed - h_queued
        bars.append(Bar(x, round(bar_w, 2), y_ok, h_ok, y_failed, h_failed, y_queued, h_queued, d))
    ticks = [(round(top + plot_h - plot_h * k / 4, 2), int(ymax * k / 4)) for k in range(5)]
    every = max(1, round(len(days) / 8))
    labels = [
        (round(left + i * slot + slot / 2, 2), d.day.strftime("%b %-d"))
        for i, d in enumerate(days)
        if i % every == 0
    ]
    return Chart(width, height, top, bottom, left, bars, ticks, labels, empty=peak == 0)
