"""Server-rendered line charts (SVG) of an endpoint's traffic, for the console.

Why on the server: the console's CSP allows only its own scripts and no inline ones, and four small
line charts need no charting library. This module turns ``[[t, value or None], ...]`` into SVG
coordinates (a polyline per unbroken run: a gap in the data stays a gap) and axis labels; the
template draws them with classes from console.css.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WIDTH, HEIGHT = 600, 140
PADDING = 4

#: Console titles and units of the traffic route's series, in display order.
SERIES = (
    ("requestRate", "Requests", "req/s"),
    ("errorRate", "Errors", "req/s"),
    ("latencyP50Ms", "Latency p50", "ms"),
    ("latencyP95Ms", "Latency p95", "ms"),
)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    lines: list[str]  # SVG polyline ``points`` attributes
    peak: str  # the top of the y axis, formatted
    latest: str  # the last value, formatted, or "no data"
    start: str
    end: str

    @property
    def empty(self) -> bool:
        return not self.lines


def _format(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M")


def chart(key: str, title: str, unit: str, points: list[list[Any]], start: float, end: float) -> Chart:
    """One chart: x spans ``start``..``end``, y spans 0..the largest value (at least a small one)."""
    values = [float(value) for _, value in points if value is not None]
    peak = max([*values, 0.0])
    top = peak if peak > 0 else 1.0
    span = max(end - start, 1.0)
    lines: list[str] = []
    run: list[str] = []
    for at, value in points:
        if value is None:
            if run:
                lines.append(" ".join(run))
                run = []
            continue
        x = PADDING + (float(at) - start) / span * (WIDTH - 2 * PADDING)
        y = HEIGHT - PADDING - float(value) / top * (HEIGHT - 2 * PADDING)
        run.append(f"{x:.1f},{y:.1f}")
    if run:
        lines.append(" ".join(run))
    # A single point draws nothing as a polyline: repeat it so the reader sees a dot-sized line.
    lines = [line if " " in line else f"{line} {line}" for line in lines]
    latest = f"{_format(values[-1])} {unit}" if values else "no data"
    return Chart(key, title, unit, lines, _format(peak), latest, _clock(start), _clock(end))


def traffic_charts(traffic: dict[str, Any]) -> list[Chart]:
    """The four charts of the traffic route's answer (``endpoints.selectors.endpoint_traffic``)."""
    series = traffic["series"]
    return [
        chart(key, title, unit, series.get(key) or [], traffic["start"], traffic["end"]) for key, title, unit in SERIES
    ]
