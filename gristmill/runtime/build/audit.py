"""Audit one table: run its checks, measure its metrics and judge its anomalies.

The checks and the metrics share the table's fused aggregate (one scan); keys, references and
custom queries add a query each; distinct ratios read a block sample. Failing rows are sampled
only for checks that failed. Anomaly checks judge a metric against its history in the state
store, leaving out the value judged and every earlier flagged value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.checks.anomaly import Point, Verdict, judge
from gristmill.checks.compile import FAILURES, compile_checks, sample_query
from gristmill.checks.metrics import (
    DISTINCT_SAMPLE_ROWS,
    MetricValue,
    derive,
    distinct_query,
    distinct_ratios,
    profile,
)
from gristmill.engines.base import Engine
from gristmill.errors import ConfigError, EngineError
from gristmill.plan.graph import Asset
from gristmill.project.checks import ANOMALY_METRICS
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.specs import CheckSpec
from gristmill.runtime.results import CheckResult
from gristmill.sql import types
from gristmill.state.history import RunHistory
from gristmill.state.records import MetricRecord

SAMPLE_ROWS = 5
_CHECK_HINT = "the check's SQL passed parsing; check its columns, types and functions"
_FLOORS = {
    "null_rate": 0.002,
    "distinct_ratio": 0.002,
    "rows_written": 1.0,
    "row_count": 1.0,
    "freshness_hours": 0.1,
}
"""The smallest spread per metric: a null rate moving by 0.1 point is no incident."""
_PII = re.compile(
    r"e_?mail|phone|mobile|ssn|social_security|passport|birth|dob|address|street|zip|postal|"
    r"first_?name|last_?name|full_?name|surname|ip_?addr|iban|card|tax_?id|national_id",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Audit:
    checks: tuple[CheckResult, ...] = ()
    metrics: tuple[MetricRecord, ...] = ()
    flagged: tuple[MetricRecord, ...] = field(default=())
    """Earlier values an anomaly check found out of line (judged again by ``gristmill check``)."""


@dataclass(frozen=True)
class Subject:
    """The table audited and what the audit needs to know about it."""

    asset: str
    physical: Callable[[str], exp.Table]
    """Table of any asset as this run sees it (the new version of this one)."""
    env: str = "prod"
    run_id: int = 0
    rows_written: int | None = None
    """Rows the run wrote (a build), judged by volume anomalies."""
    table_rows: int | None = None
    """Rows the table holds, when known without counting (a build that wrote all of it)."""
    time_column: str | None = None
    """The column freshness is measured on when a check does not name one."""
    personal: Collection[str] = ()
    """Columns declared personal data: masked in samples whatever their names."""
    measure: bool = True
    distinct: bool = True
    """Measure distinct ratios too."""
    samples: int = SAMPLE_ROWS
    """Failing rows to keep per failed check."""
    isolated: bool = False
    """Each statement stands alone (no build transaction): a check that cannot run fails alone."""


def time_column(asset: Asset) -> str | None:
    """The column that tells how fresh an asset is: a model's time, a load's cursor."""
    if asset.model is not None:
        return asset.model.time
    if asset.table is not None and asset.table.load.incremental is not None:
        return asset.table.load.incremental.cursor
    return None


def measured(asset: Asset, enabled: bool) -> bool:
    """Whether to measure an asset's metrics: always when an anomaly check judges them, else when
    measuring is on -- a view only when its checks scan it anyway (measuring a view runs it)."""
    if any(c.kind == "anomaly" for c in asset.checks):
        return True
    scans = any(c.kind not in ("schema", "anomaly") for c in asset.checks)
    return enabled and (asset.kind != "view" or scans)


def audit(subject: Subject, checks: Sequence[CheckSpec], engine: Engine, history: RunHistory) -> Audit:
    table = subject.physical(subject.asset)
    needs_columns = (
        subject.measure or subject.isolated or any(c.kind in ("schema", "anomaly") for c in checks)
    )
    # as text: schema checks declare and show types as text, metrics pick columns by type name
    columns = types.texts(engine.describe(table), engine.dialect) if needs_columns else []
    results = [_schema(c, columns) for c in checks if c.kind == "schema"]
    # Distinct counts hash every value (several times the cost of the other metrics), so a build
    # counts them only when an anomaly check judges them. A table known to be small counts them
    # in the same scan; a large one (or one of unknown size) reads a block sample.
    known = subject.table_rows is not None and subject.table_rows <= DISTINCT_SAMPLE_ROWS
    small = subject.distinct and known
    aggregates = profile(columns, distinct=small) if subject.measure else []
    measured_at = datetime.now(UTC)
    values: list[MetricValue] = []
    if subject.rows_written is not None:
        values.append(MetricValue("rows_written", "", float(subject.rows_written)))
    counted = [c for c in checks if c.kind not in ("schema", "anomaly")]
    if subject.isolated:  # no plan validated the columns against this table
        unknown = {c: _unknown_column(c, columns) for c in counted}
        results += [CheckResult(c, 1, detail=problem) for c, problem in unknown.items() if problem]
        counted = [c for c in counted if not unknown[c]]
    profiles = {subject.asset: aggregates} if aggregates else None
    # With samples off, keys, references and queries still need one row to carry their count.
    for query in compile_checks(counted, subject.physical, profiles, max(subject.samples, 1)):
        try:
            if query.sampled:
                rows = engine.query(query.query).to_pylist()
            else:
                row: Mapping[str, Any] = engine.row(query.query) or {}
        except EngineError as err:
            names = ", ".join(c.name for c in query.checks) or "the table's metrics"
            if not subject.isolated:  # the build's transaction is spoilt: the step fails, named
                raise EngineError(f"{names} could not run: {err}", hint=_CHECK_HINT) from None
            results += [CheckResult(c, 1, detail=f"could not run: {err}") for c in query.checks]
            continue
        if query.sampled:
            [check] = query.checks
            failures = int(rows[0][FAILURES]) if rows else 0
            shown = [{k: v for k, v in r.items() if k != FAILURES} for r in rows[: subject.samples]]
            results.append(CheckResult(check, failures, _masked(shown, subject)))
            continue
        for i, check in enumerate(query.checks):
            failures = int(row[f"c{i}"] or 0)
            samples = _samples(check, engine, subject) if failures and subject.samples else ()
            results.append(CheckResult(check, failures, samples))
        if query.metrics:
            values += derive(query.metrics, [row[f"m{i}"] for i in range(len(query.metrics))], measured_at)
    if subject.measure and subject.distinct and not small:
        rows = next((int(v.value or 0) for v in values if v.metric == "row_count"), 0)
        sampled = distinct_query(table, columns, rows)
        if sampled is not None:
            values += distinct_ratios(columns, engine.row(sampled) or {})
    records = [MetricRecord(subject.asset, v.metric, v.column, v.value, env=subject.env) for v in values]
    flagged: list[MetricRecord] = []
    for check in checks:
        if check.kind == "anomaly":
            result, judged = _anomaly(check, subject, columns, records, history)
            results.append(result)
            if judged is not None and not result.passed:
                if judged in records:
                    records[records.index(judged)] = replace(judged, flagged=True)
                else:
                    flagged.append(judged)
    return Audit(tuple(results), tuple(records), tuple(flagged))


def _anomaly(
    check: CheckSpec,
    subject: Subject,
    columns: Sequence[tuple[str, str]],
    measured: list[MetricRecord],
    history: RunHistory,
) -> tuple[CheckResult, MetricRecord | None]:
    """The check's verdict on the metric's newest value, and that value."""
    params = check.params
    metric = ANOMALY_METRICS[params["metric"]]
    column = check.columns[0] if check.columns else ""
    if metric == "freshness_hours" and not column:
        column = _time_column(check, subject, columns)
    past = history.quality.metric_history(subject.asset, metric, column, env=subject.env)
    current = next((m for m in measured if m.metric == metric and m.column == column), None)
    if current is None and metric == "rows_written" and past:
        current, past = past[-1], past[:-1]  # no build here: judge the last one that wrote
    label = f"{params['metric']}{f'({column})' if column else ''}"
    if current is None or current.value is None:
        return CheckResult(check, 0, detail=f"{label}: nothing measured yet"), None
    at = datetime.fromisoformat(current.measured_at) if current.measured_at else datetime.now(UTC)
    verdict: Verdict = judge(
        current.value,
        at,
        [
            Point(datetime.fromisoformat(p.measured_at), p.value, p.flagged)
            for p in past
            if p.value is not None
        ],
        sensitivity=float(params.get("sensitivity", 3.5)),
        min_history=int(params.get("min_history", 7)),
        seasonality=params.get("seasonality", "auto"),
        direction=params.get("direction", "both"),
        floor=_FLOORS.get(metric, 0.0),
    )
    sample = {
        "value": verdict.value,
        "expected_low": verdict.low,
        "expected_high": verdict.high,
        "median": verdict.median,
        "history": verdict.history,
    }
    detail = verdict.describe(label)
    return CheckResult(check, int(verdict.anomalous), (sample,) if verdict.anomalous else (), detail), current


def _unknown_column(check: CheckSpec, columns: Sequence[tuple[str, str]]) -> str | None:
    names = [name for name, _ in columns]
    for column in check.columns:
        if column not in names:
            hint = did_you_mean(column, names)
            return f'column "{column}" does not exist ({check.location}){f"; {hint}" if hint else ""}'
    return None


def _time_column(check: CheckSpec, subject: Subject, columns: Sequence[tuple[str, str]]) -> str:
    if subject.time_column:
        return subject.time_column
    temporal = [name for name, dtype in columns if dtype.upper().startswith(("TIMESTAMP", "DATE"))]
    if len(temporal) == 1:
        return temporal[0]
    raise ConfigError(
        f"{check.name}: which column tells how fresh {subject.asset} is?",
        location=check.location,
        hint="name it: {metric: freshness, column: updated_at}"
        + (f"; time columns: {', '.join(temporal)}" if temporal else "; the table has no time column"),
    )


def _schema(check: CheckSpec, columns: Sequence[tuple[str, str]]) -> CheckResult:
    """Expected columns (and types) against the new version's: one failure per difference, each
    described in the samples."""
    found = dict(columns)
    problems: list[dict[str, Any]] = []
    for column, expected in dict(check.params["expect"]).items():
        if column not in found:
            problems.append({"column": column, "expected": expected or "any type", "found": "missing"})
        elif expected and _type(expected) != _type(found[column]):
            problems.append({"column": column, "expected": expected, "found": found[column]})
    if check.params.get("exact"):
        extra = [c for c in found if c not in check.params["expect"]]
        problems.extend({"column": c, "expected": "absent", "found": found[c]} for c in extra)
    return CheckResult(check, len(problems), tuple(problems[:SAMPLE_ROWS]))  # differences, not rows


def _type(name: str) -> str:
    """A type's canonical spelling in the project's dialect, the one checks declare types in (INT
    and INTEGER, TEXT and VARCHAR compare equal)."""
    try:
        return exp.DataType.build(name, dialect=PROJECT_DIALECT).sql(dialect=PROJECT_DIALECT)
    except Exception:  # an unknown type name compares as written
        return name.upper()


def _samples(check: CheckSpec, engine: Engine, subject: Subject) -> tuple[dict[str, Any], ...]:
    """Only for a row check that failed: a few failing rows, read before a rollback can remove them."""
    query = sample_query(check, subject.physical(check.asset), subject.samples)
    return _masked(engine.query(query).to_pylist(), subject) if query is not None else ()


def _masked(rows: list[dict[str, Any]], subject: Subject) -> tuple[dict[str, Any], ...]:
    """Values of personal-data columns (declared, or named like it) as ``***``."""
    personal = set(subject.personal)
    return tuple(
        {k: ("***" if v is not None and (k in personal or _PII.search(k)) else v) for k, v in row.items()}
        for row in rows
    )
