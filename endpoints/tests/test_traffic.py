"""Endpoint traffic without a platform: PromQL built from checked and escaped names only, the
range/step rules, and the server-rendered charts."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from endpoints.api.serializers import validate_traffic_query
from endpoints.charts import HEIGHT, PADDING, WIDTH, chart, traffic_charts
from endpoints.selectors import _traffic_queries
from inferencemgmt import prometheus

pytestmark = pytest.mark.unit


def test_queries_name_only_the_tenants_namespace_and_the_endpoint() -> None:
    queries = _traffic_queries("team-a1", "adder", "60s")
    assert set(queries) == {"requestRate", "errorRate", "latencyP50Ms", "latencyP95Ms"}
    for query in queries.values():
        assert 'namespace="team-a1"' in query
        assert 'endpoint="adder"' in query
        assert "=~" not in query
        assert "!=" not in query
    assert 'quantile="0.95"' in queries["latencyP95Ms"]


@pytest.mark.parametrize(
    "value",
    ['a"}or{namespace=~".*', "a\\", "A", "a b", "", "x" * 254, 'team-a1",namespace!="', "-a", "a\n"],
)
def test_label_values_that_are_not_object_names_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes object name"):
        prometheus.label_value(value)


def test_selector_refuses_a_metric_name_that_is_an_expression() -> None:
    with pytest.raises(ValueError, match="not a metric name"):
        prometheus.selector("up or vector(1)", namespace="a1")
    assert prometheus.selector("up", namespace="a1", endpoint="e.1") == 'up{namespace="a1",endpoint="e.1"}'


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (3600, 30)),
        ({"range": "5m"}, (300, 5)),
        ({"range": "7d"}, (604800, 5040)),
        ({"range": "1h", "step": "1m"}, (3600, 60)),
        ({"range": "1h", "step": "5s"}, (3600, 5)),
        ({"range": "300s", "step": "300s"}, (300, 300)),
    ],
)
def test_ranges_and_steps_within_bounds(params: dict[str, str], expected: tuple[int, int]) -> None:
    assert validate_traffic_query(params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"range": "4m"},
        {"range": "8d"},
        {"range": "1w"},
        {"range": "-1h"},
        {"range": "1.5h"},
        {"range": " 1h"},
        {"range": "1h", "step": "4s"},
        {"range": "1h", "step": "2h"},
        {"range": "7d", "step": "5s"},
        {"range": "1h", "step": "x"},
        {"range": "1h", "start": "0"},
    ],
)
def test_bad_ranges_and_steps_are_refused(params: dict[str, str]) -> None:
    with pytest.raises(serializers.ValidationError):
        validate_traffic_query(params)


def test_a_chart_scales_to_its_peak_and_keeps_gaps() -> None:
    points: list[list[Any]] = [[0, 1.0], [10, 2.0], [20, None], [30, 4.0], [40, 4.0]]
    drawn = chart("requestRate", "Requests", "req/s", points, 0, 40)
    assert len(drawn.lines) == 2  # the None is a gap, not a zero
    first = [tuple(map(float, pair.split(","))) for pair in drawn.lines[0].split()]
    assert first[0] == (PADDING, HEIGHT - PADDING - (HEIGHT - 2 * PADDING) / 4)
    last = [tuple(map(float, pair.split(","))) for pair in drawn.lines[1].split()]
    assert last[-1] == (WIDTH - PADDING, PADDING)  # the peak touches the top, the end the right edge
    assert drawn.peak == "4"
    assert drawn.latest == "4 req/s"


def test_charts_without_data_say_so() -> None:
    charts = traffic_charts({"start": 0, "end": 3600, "series": {"requestRate": [], "errorRate": [[0, None]]}})
    assert [c.key for c in charts] == ["requestRate", "errorRate", "latencyP50Ms", "latencyP95Ms"]
    assert all(c.empty and c.latest == "no data" for c in charts)
