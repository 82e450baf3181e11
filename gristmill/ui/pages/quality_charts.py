"""The Quality page's Vega-Lite specs: an asset's checks over its runs (pass / warn / fail), and
an anomaly check's metric with the baseline band the check judged each value against."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gristmill.checks.anomaly import Point, judge
from gristmill.state import CheckRecord, MetricRecord

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
CHECK_COLOURS = {"pass": "#2b7a78", "warn": "#b26a00", "fail": "#c62828", "error": "#7b1fa2"}
FLOORS = {
    "null_rate": 0.002,
    "distinct_ratio": 0.002,
    "rows_written": 1.0,
    "row_count": 1.0,
    "freshness_hours": 0.1,
}
"""The smallest spread per metric, as the run's anomaly checks use it (runtime/build/audit.py):
the band drawn is the band judged."""


def check_timeline(checks: Sequence[CheckRecord]) -> dict[str, Any] | None:
    """One square per check per run, coloured by status; clicking one opens its run."""
    if not checks:
        return None
    cells = [
        {
            "run": f"#{c.run_id}",
            "run_id": c.run_id,
            "check": c.check,
            "status": c.status,
            "failures": c.failures,
            "at": c.finished_at,
            "href": f"/runs/{c.run_id}",
        }
        for c in checks
    ]
    statuses = sorted({c.status for c in checks})
    runs = [f"#{r}" for r in sorted({c.run_id for c in checks})]
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": {"step": 16},
        "data": {"values": cells},
        "mark": {"type": "rect", "cornerRadius": 2, "tooltip": True, "cursor": "pointer"},
        "encoding": {
            "x": {"field": "run", "type": "ordinal", "sort": runs, "title": None, "axis": {"labelAngle": 0}},
            "y": {"field": "check", "type": "nominal", "title": None},
            "color": {
                "field": "status",
                "type": "nominal",
                "scale": {"domain": statuses, "range": [CHECK_COLOURS.get(s, "#888") for s in statuses]},
                "legend": {"orient": "top", "title": None},
            },
            "href": {"field": "href"},
            "tooltip": [
                {"field": "check"},
                {"field": "run"},
                {"field": "status"},
                {"field": "failures"},
                {"field": "at"},
            ],
        },
    }


def band_points(series: Sequence[MetricRecord], params: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Each measured value with the band the check judged it against: the median and low..high of
    the values before it (flagged ones left out), by the same function and parameters as the
    run. A value judged while the baseline was still learning has no band."""
    points = [
        (datetime.fromisoformat(m.measured_at), float(m.value), m)
        for m in series
        if m.value is not None and m.measured_at
    ]
    points.sort(key=lambda p: p[0])
    shown: list[dict[str, Any]] = []
    for index, (at, value, record) in enumerate(points):
        verdict = judge(
            value,
            at,
            [Point(a, v, r.flagged) for a, v, r in points[:index]],
            sensitivity=float(params.get("sensitivity", 3.5)),
            min_history=int(params.get("min_history", 7)),
            seasonality=params.get("seasonality", "auto"),
            direction=params.get("direction", "both"),
            floor=FLOORS.get(metric, 0.0),
        )
        shown.append(
            {
                "at": at.isoformat(),
                "run": record.run_id,
                "value": value,
                "median": verdict.median,
                "low": verdict.low,
                "high": verdict.high,
                "flagged": record.flagged,
            }
        )
    return shown


def band_chart(points: list[dict[str, Any]], title: str) -> dict[str, Any] | None:
    """The metric as a line over its baseline band; flagged values in red."""
    if not points:
        return None
    x = {"field": "at", "type": "temporal", "title": None, "axis": {"format": "%b %d %H:%M"}}
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 160,
        "title": {"text": title, "anchor": "start", "fontSize": 12},
        "data": {"values": points},
        "layer": [
            {
                "transform": [{"filter": "datum.low != null"}],
                "mark": {"type": "area", "opacity": 0.18, "color": "#2b7a78"},
                "encoding": {
                    "x": x,
                    "y": {"field": "low", "type": "quantitative", "title": None},
                    "y2": {"field": "high"},
                },
            },
            {
                "transform": [{"filter": "datum.median != null"}],
                "mark": {"type": "line", "strokeDash": [4, 3], "color": "#2b7a78", "opacity": 0.6},
                "encoding": {"x": x, "y": {"field": "median", "type": "quantitative"}},
            },
            {
                "mark": {"type": "line", "point": {"filled": True, "size": 40}, "color": "#5b6470"},
                "encoding": {"x": x, "y": {"field": "value", "type": "quantitative"}},
            },
            {
                "transform": [{"filter": "datum.flagged"}],
                "mark": {"type": "point", "filled": True, "size": 90, "color": "#c62828"},
                "encoding": {
                    "x": x,
                    "y": {"field": "value", "type": "quantitative"},
                    "tooltip": [{"field": "run"}, {"field": "value"}, {"field": "low"}, {"field": "high"}],
                },
            },
        ],
    }
