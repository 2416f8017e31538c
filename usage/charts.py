"""Server-rendered SVG line charts for the console (no script, no inline style: the CSP stays strict).

Coordinates are computed here and the template writes them into ``<polyline points>``; colours come
from classes in console.css.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 180, 48, 22, 10


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    points: str
    quota_y: float | None
    top: float
    first: str
    last: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    bottom: int = HEIGHT - PAD_BOTTOM


def _x(index: int, count: int) -> float:
    span = WIDTH - PAD_LEFT - 4
    return PAD_LEFT + (span * index / (count - 1) if count > 1 else 0)


def line_chart(title: str, unit: str, series: list[dict[str, Any]], key: str, quota_key: str | None) -> Chart:
    values = [float(point[key]) for point in series]
    quotas = [point[quota_key] for point in series if quota_key and point.get(quota_key) is not None]
    quota = float(quotas[-1]) if quotas else None
    top = max([*values, quota or 0.0, 1e-9])
    top = top * 1.1 if top > 0 else 1.0
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP

    def y(value: float) -> float:
        return round(PAD_TOP + plot_height * (1 - value / top), 1)

    points = " ".join(f"{round(_x(i, len(values)), 1)},{y(v)}" for i, v in enumerate(values))
    first = datetime.fromisoformat(series[0]["time"]).strftime("%m-%d %H:%M") if series else ""
    last = datetime.fromisoformat(series[-1]["time"]).strftime("%m-%d %H:%M") if series else ""
    return Chart(title, unit, points, y(quota) if quota is not None else None, round(top, 3), first, last)


def usage_charts(usage: dict[str, Any]) -> list[Chart]:
    series = usage["series"]
    return [
        line_chart("Replicas", "pods", series, "replicas", None),
        line_chart("CPU requested", "cores", series, "cpu", "quotaCpu"),
        line_chart("Memory requested", "GiB", series, "memoryGiB", "quotaMemoryGiB"),
        line_chart("GPUs", "GPUs", series, "gpus", "quotaGpus"),
    ]
