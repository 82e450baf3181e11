"""A report from the run history: one run's check results with each check's earlier statuses,
and the metric trends worth a glance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from gristmill.report.model import CheckRow, MetricPoint, MetricSeries, Report
from gristmill.state.records import CheckRecord, MetricRecord

_ALWAYS = ("row_count", "rows_written", "freshness_hours")
"""Shown for every asset; other metrics when they move (null rates) or an anomaly check reads them."""


def from_history(
    project: str,
    env: str,
    run_id: int,
    checks: Sequence[CheckRecord],
    metrics: Sequence[MetricRecord],
    *,
    title: str = "Data quality",
) -> Report:
    """``checks`` and ``metrics`` hold the history of the run's assets, oldest first."""
    statuses: dict[tuple[str, str], list[str]] = {}
    rows: list[CheckRow] = []
    for record in checks:
        key = (record.asset, record.check)
        if record.run_id == run_id:
            earlier = tuple(statuses.get(key, ()))
            rows.append(
                CheckRow(
                    record.asset,
                    record.check,
                    record.severity,
                    record.status,
                    record.failures,
                    record.samples,
                    earlier,
                    record.detail,
                )
            )
        elif record.run_id < run_id:
            statuses.setdefault(key, []).append(record.status)
    watched = {(r.asset, _watched(r.check)) for r in rows if r.check.startswith("anomaly(")}
    return Report(
        title,
        project,
        env,
        run_id,
        datetime.now(UTC),
        tuple(rows),
        tuple(_series(metrics, watched)),
    )


def _watched(check: str) -> str:
    """``anomaly(null_rate(email))`` -> ``null_rate(email)``."""
    return check.removeprefix("anomaly(").removesuffix(")")


def _series(metrics: Iterable[MetricRecord], watched: set[tuple[str, str]]) -> list[MetricSeries]:
    grouped: dict[tuple[str, str, str], list[MetricRecord]] = {}
    for record in metrics:
        grouped.setdefault((record.asset, record.metric, record.column), []).append(record)
    found: list[MetricSeries] = []
    for (asset, metric, column), records in grouped.items():
        named = metric.removesuffix("_hours").replace("rows_written", "volume")
        shown = (
            metric in _ALWAYS
            or (asset, f"{named}({column})" if column else named) in watched
            or (metric == "null_rate" and any(r.value for r in records))
        )
        if not shown:
            continue
        points = tuple(MetricPoint(_moment(r.measured_at), r.value, r.flagged, r.run_id) for r in records)
        found.append(MetricSeries(asset, metric, column or None, points))
    return found


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.now(UTC)
