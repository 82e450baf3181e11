"""The Quality page's data, without a browser: check timelines, failures, the anomaly band."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gristmill.checks.anomaly import Point, judge
from gristmill.errors import ConfigError
from gristmill.state import CheckRecord, MetricRecord
from gristmill.ui.pages import quality
from gristmill.ui.pages.quality_charts import band_chart, band_points, check_timeline


def _check(run_id: int, status: str, samples: tuple[dict[str, Any], ...] = ()) -> CheckRecord:
    return CheckRecord(run_id, "marts.orders", "not_null(id)", "error", status, len(samples), samples)


def test_the_timeline_has_a_cell_per_check_and_run_linking_to_the_run() -> None:
    spec = check_timeline([_check(1, "pass"), _check(2, "fail"), _check(3, "warn")])
    assert spec is not None
    cells = spec["data"]["values"]
    assert [(c["run"], c["status"], c["href"]) for c in cells] == [
        ("#1", "pass", "/runs/1"),
        ("#2", "fail", "/runs/2"),
        ("#3", "warn", "/runs/3"),
    ]
    colour = spec["encoding"]["color"]["scale"]
    assert dict(zip(colour["domain"], colour["range"], strict=True))["fail"] == "#c62828"
    assert spec["encoding"]["href"] == {"field": "href"}
    assert spec["encoding"]["x"]["sort"] == ["#1", "#2", "#3"]
    assert check_timeline([]) is None


def test_failures_are_newest_first_with_their_sample_rows_as_a_table() -> None:
    rows = quality.failure_rows(
        [_check(1, "fail", ({"id": None, "name": "a"},)), _check(2, "pass"), _check(3, "warn", ({"id": 4},))]
    )
    assert [r["check"].run_id for r in rows] == [3, 1]
    assert rows[1]["columns"] == ["id", "name"] and rows[1]["rows"] == [["NULL", "a"]]


def _series(values: list[float], flagged: tuple[int, ...] = ()) -> list[MetricRecord]:
    start = datetime(2026, 11, 2, 3, tzinfo=UTC)  # a Monday; daily, so no weekly baseline
    return [
        MetricRecord(
            "marts.orders",
            "rows_written",
            "",
            v,
            i in flagged,
            i + 1,
            (start + timedelta(days=i)).isoformat(),
        )
        for i, v in enumerate(values)
    ]


def test_the_band_of_each_value_is_the_one_the_check_judged_it_against() -> None:
    values = [100.0, 102, 98, 101, 99, 100, 103, 500, 101]
    series = _series(values, flagged=(7,))
    points = band_points(series, {"min_history": 7}, "rows_written")
    assert [p["value"] for p in points] == values
    assert all(p["low"] is None for p in points[:7])  # learning: no band yet
    at = datetime.fromisoformat(series[8].measured_at)
    expected = judge(
        101.0,
        at,
        [Point(datetime.fromisoformat(m.measured_at), float(m.value or 0), m.flagged) for m in series[:8]],
        min_history=7,
        floor=1.0,
    )
    assert (points[8]["low"], points[8]["high"], points[8]["median"]) == (
        expected.low,
        expected.high,
        expected.median,
    )
    assert points[7]["flagged"] and points[7]["high"] < 500  # the spike is outside its band
    chart = band_chart(points, "orders · volume")
    assert chart is not None and chart["layer"][0]["encoding"]["y2"] == {"field": "high"}
    assert band_chart([], "nothing") is None


def test_an_unknown_status_filter_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="no check status"):
        quality.data(object(), status="exploded")  # type: ignore[arg-type]
