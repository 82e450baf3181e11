"""Table metrics measured with the checks: row count, null rate, distinct ratio, min/max and
freshness per column -- the history anomaly checks judge.

Counts and min/max ride in the table's fused check aggregate (one scan). Distinct ratios come
from an exact distinct count over a block sample of about ``DISTINCT_SAMPLE_ROWS`` rows (or the
whole table when a build just wrote that few), so a wide table of billions of rows costs a small
read, not a second full scan. Min/max are kept for numbers and
times only (as numbers; times as seconds since the epoch): comparing strings costs more than
it tells.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from gristmill.sql.functions import epoch_seconds

DISTINCT_SAMPLE_ROWS = 250_000
# Type names as the engine spells them (PostgreSQL: DOUBLE PRECISION, FLOAT4, INT8 …).
_NUMERIC = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER|[248])?|FLOAT[48]?|DOUBLE( PRECISION)?|REAL|DECIMAL.*|NUMERIC.*)$"
)
_TEMPORAL = re.compile(r"^(DATE|TIMESTAMP.*|DATETIME)$")
_NESTED = re.compile(r"(STRUCT|MAP|UNION|\[\]|LIST|BLOB|VARIANT)")


@dataclass(frozen=True)
class Aggregate:
    """One aggregate of the fused scan: ``(kind, column)`` names what it measures."""

    kind: str  # rows | non_null | distinct | min | max
    column: str
    expression: exp.Expr
    temporal: bool = False
    """min/max of a time, in seconds since the epoch."""


@dataclass(frozen=True)
class MetricValue:
    metric: str  # row_count | rows_written | null_rate | distinct_ratio | min | max | freshness_hours
    column: str  # "" for the whole table
    value: float | None


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _distinct(name: str) -> exp.Expr:
    # Exact: on at most ~250,000 rows it costs milliseconds, and DuckDB's approximate count is
    # off by 10-25% at these sizes -- enough to hide a real change in the ratio.
    return exp.Count(this=exp.Distinct(expressions=[_col(name)]))


def profile(columns: Sequence[tuple[str, str]], *, distinct: bool = False) -> list[Aggregate]:
    """The aggregates of a full scan: rows, then non-null counts, min and max per column -- and
    distinct counts when the table is known to be small enough to count them all."""
    found = [Aggregate("rows", "", exp.Count(this=exp.Star()))]
    for name, dtype in columns:
        kind = dtype.upper()
        found.append(Aggregate("non_null", name, exp.Count(this=_col(name))))
        if distinct and not _NESTED.search(kind):
            found.append(Aggregate("distinct", name, _distinct(name)))
        if _NUMERIC.match(kind):
            for fn, agg in (("min", exp.Min), ("max", exp.Max)):
                found.append(
                    Aggregate(fn, name, exp.cast(agg(this=_col(name)), exp.DataType.build("DOUBLE")))
                )
        elif _TEMPORAL.match(kind):
            for fn, agg in (("min", exp.Min), ("max", exp.Max)):
                found.append(Aggregate(fn, name, epoch_seconds(agg(this=_col(name))), temporal=True))
    return found


def distinct_query(table: exp.Table, columns: Sequence[tuple[str, str]], rows: int) -> exp.Query | None:
    """Non-null and approximate distinct counts per column, on a block sample of a large table."""
    countable = [name for name, dtype in columns if not _NESTED.search(dtype.upper())]
    if not countable or rows == 0:
        return None
    selects: list[exp.Expr] = []
    for i, name in enumerate(countable):
        selects.append(exp.alias_(exp.Count(this=_col(name)), f"n{i}"))
        selects.append(exp.alias_(_distinct(name), f"d{i}"))
    query = exp.select(*selects).from_(table.copy())
    if rows > DISTINCT_SAMPLE_ROWS:
        percent = max(0.01, round(100 * DISTINCT_SAMPLE_ROWS / rows, 2))
        sample = exp.TableSample(
            method=exp.var("SYSTEM"), percent=exp.Literal.number(percent), seed=exp.Literal.number(42)
        )
        query.set("sample", sample)
    return query


def distinct_ratios(columns: Sequence[tuple[str, str]], row: Mapping[str, int | None]) -> list[MetricValue]:
    countable = [name for name, dtype in columns if not _NESTED.search(dtype.upper())]
    found: list[MetricValue] = []
    for i, name in enumerate(countable):
        seen, distinct = row.get(f"n{i}") or 0, row.get(f"d{i}") or 0
        found.append(MetricValue("distinct_ratio", name, min(1.0, distinct / seen) if seen else None))
    return found


def derive(
    aggregates: Sequence[Aggregate], values: Sequence[object], measured_at: datetime
) -> list[MetricValue]:
    """Metrics from the aggregates' values: null rates from non-null counts, freshness from the
    latest time."""
    rows = 0
    found: list[MetricValue] = []
    non_null: dict[str, int] = {}
    for aggregate, value in zip(aggregates, values, strict=True):
        if aggregate.kind == "distinct":
            seen = non_null.get(aggregate.column, 0)
            ratio = min(1.0, int(value or 0) / seen) if seen else None  # type: ignore[call-overload]
            found.append(MetricValue("distinct_ratio", aggregate.column, ratio))
        elif aggregate.kind == "rows":
            rows = int(value or 0)  # type: ignore[call-overload]
            found.append(MetricValue("row_count", "", float(rows)))
        elif aggregate.kind == "non_null":
            non_null[aggregate.column] = int(value or 0)  # type: ignore[call-overload]
            rate = 1 - non_null[aggregate.column] / rows if rows else None
            found.append(MetricValue("null_rate", aggregate.column, rate))
        else:
            number = None if value is None else float(value)  # type: ignore[arg-type]
            found.append(MetricValue(aggregate.kind, aggregate.column, number))
    temporal = {a.column for a in aggregates if a.kind == "max" and a.temporal}
    for metric in list(found):
        if metric.metric == "max" and metric.column in temporal:
            age = None if metric.value is None else (measured_at.timestamp() - metric.value) / 3600
            found.append(MetricValue("freshness_hours", metric.column, age))
    return found
