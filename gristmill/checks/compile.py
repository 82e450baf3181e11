"""Compile check specs into SQL expressions (sqlglot ASTs) that count failing rows.

Every check on one table that needs no join or grouping fuses into one aggregate -- a FILTER
count per row check, an aggregate expression per table check -- so any number of them costs one
scan; each uniqueness key gets one group-by (cheaper than ``count(DISTINCT)`` in the aggregate),
each reference one anti-join and each custom query one count. User values (bounds, patterns)
enter as literals; an ``expression`` or ``query`` check's SQL enters as its parsed AST.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlglot import exp

from gristmill.checks.metrics import Aggregate
from gristmill.project.checks import FORMATS, parse_condition, parse_duration, parse_failing_rows_query
from gristmill.project.specs import CheckSpec

TableFor = Callable[[str], exp.Table]


FAILURES = "_gm_failures"


@dataclass(frozen=True)
class CheckQuery:
    """Either the fused aggregate -- one row; column ``c<i>`` counts the rows failing
    ``checks[i]`` and column ``m<i>`` is the value of ``metrics[i]`` -- or, when ``sampled``, one
    check's failing rows (at most the sample limit), each carrying the total count in
    ``_gm_failures``: no rows means no failure."""

    query: exp.Query
    checks: tuple[CheckSpec, ...]
    metrics: tuple[Aggregate, ...] = ()
    sampled: bool = False


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _out_of_bounds(value: exp.Expr, params: dict[str, Any]) -> exp.Expr | None:
    """True when ``value`` is outside [min, max] (or (min, max) when exclusive); NULL when it is NULL."""
    exclusive = bool(params.get("exclusive"))
    outside: list[exp.Expr] = []
    if params.get("min") is not None:
        low = exp.convert(params["min"])
        outside.append(value.copy() <= low if exclusive else value.copy() < low)
    if params.get("max") is not None:
        high = exp.convert(params["max"])
        outside.append(value.copy() >= high if exclusive else value.copy() > high)
    return exp.or_(*outside) if outside else None


def _one_if(condition: exp.Expr) -> exp.Expr:
    """1 when ``condition`` holds, else 0: a table-level check fails once or not at all."""
    return exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0))


def _failing_condition(check: CheckSpec) -> exp.Expr | None:
    """The condition a failing row meets (a FILTER count), for checks that look at one row."""
    if check.kind == "expression":
        holds = exp.Is(this=exp.paren(parse_condition(check.params["sql"])), expression=exp.true())
        return exp.Not(this=exp.paren(holds))  # NULL is not true: it fails
    if not check.columns:
        return None
    column = _col(check.columns[0])
    if check.kind == "not_null":
        return column.is_(exp.null())
    if check.kind == "accepted_values":
        values = [exp.convert(v) for v in check.params["values"]]
        return exp.and_(column.is_(exp.null()).not_(), exp.In(this=column, expressions=values).not_())
    if check.kind == "range":
        return _out_of_bounds(column, check.params)
    if check.kind in ("regex", "format"):
        pattern = check.params["pattern"] if check.kind == "regex" else FORMATS[check.params["as"]]
        text = exp.cast(column, exp.DataType.build("VARCHAR"))
        return exp.RegexpFullMatch(this=text, expression=exp.Literal.string(pattern)).not_()
    return None


def failing_row(check: CheckSpec) -> exp.Expr:
    """True for a row a row-level check rejects, never NULL (so it can drive a DELETE)."""
    condition = _failing_condition(check)
    if condition is None:
        raise ValueError(f"{check.name} does not judge single rows")
    return exp.func("coalesce", exp.paren(condition), exp.false())


def _table_failures(check: CheckSpec) -> exp.Expr | None:
    """An aggregate that is 1 when a table-level check fails, else 0."""
    if check.kind == "row_count":
        return _one_if(_out_of_bounds(exp.Count(this=exp.Star()), check.params) or exp.false())
    if check.kind == "aggregate":
        function = _AGGREGATES[check.params["function"]]
        value = function(this=_col(check.columns[0]))
        bounds = _out_of_bounds(value, check.params) or exp.false()
        return _one_if(exp.or_(value.copy().is_(exp.null()), bounds))
    if check.kind == "unknown_members":
        # fact rows whose lookup found no member point at the unknown member (-1), which any
        # relationships check accepts: count them, failing with the count above ``max``
        unknown = exp.Filter(
            this=exp.Count(this=exp.Star()),
            expression=exp.Where(this=exp.EQ(this=_col(check.columns[0]), expression=exp.Literal.number(-1))),
        )
        allowed = exp.Literal.number(int(check.params.get("max") or 0))
        return exp.Case(
            ifs=[exp.If(this=exp.GT(this=unknown, expression=allowed), true=unknown.copy())],
            default=exp.Literal.number(0),
        )
    if check.kind == "freshness":
        age = parse_duration(check.params["max_age"]) or timedelta(0)  # validated when declared
        seconds = exp.Literal.string(str(round(age.total_seconds())))
        oldest = exp.CurrentTimestamp() - exp.Interval(this=seconds, unit=exp.var("SECOND"))
        latest = exp.Max(this=_col(check.columns[0]))
        return _one_if(exp.or_(latest.is_(exp.null()), latest.copy() < oldest))
    return None


_AGGREGATES: dict[str, type[exp.Func]] = {
    "mean": exp.Avg,
    "avg": exp.Avg,
    "sum": exp.Sum,
    "min": exp.Min,
    "max": exp.Max,
    "stddev": exp.Stddev,
}


def compile_checks(
    checks: Sequence[CheckSpec],
    table_for: TableFor,
    profiles: Mapping[str, Sequence[Aggregate]] | None = None,
    samples: int = 5,
) -> list[CheckQuery]:
    """All queries needed to evaluate ``checks``, which may span several assets; the metric
    aggregates in ``profiles`` (by asset) join each asset's fused scan. Keys, references and
    custom queries return their count with up to ``samples`` failing rows in one statement, so
    a failure costs no second grouping or join."""
    queries: list[CheckQuery] = []
    profiles = profiles or {}
    by_asset: dict[str, list[CheckSpec]] = {asset: [] for asset in profiles}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    for asset, asset_checks in by_asset.items():
        fused: list[tuple[CheckSpec, exp.Expr]] = []
        for check in asset_checks:
            condition = _failing_condition(check)
            table_level = _table_failures(check)
            if condition is not None:
                counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))
                fused.append((check, counted))
            elif table_level is not None:
                fused.append((check, table_level))
            elif check.kind in ("unique", "relationships", "query"):
                queries.append(_counted_with_samples(check, table_for, samples))
        metrics = tuple(profiles.get(asset, ()))
        if fused or metrics:
            select = exp.select(
                *(exp.alias_(expr, f"c{i}") for i, (_, expr) in enumerate(fused)),
                *(exp.alias_(m.expression.copy(), f"m{i}") for i, m in enumerate(metrics)),
            )
            queries.append(CheckQuery(select.from_(table_for(asset)), tuple(c for c, _ in fused), metrics))
    return queries


def failing_rows(check: CheckSpec, table_for: TableFor) -> exp.Query:
    """A ``query`` check's SELECT with ``this`` and every ``schema.asset`` pointed at the tables
    being checked (a CTE of the same name is left alone)."""
    query = parse_failing_rows_query(str(check.params["sql"]))
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        if table.catalog or (not table.db and table.name in ctes):
            continue
        if not table.db and table.name != "this":
            continue
        name = check.asset if not table.db else f"{table.db}.{table.name}"
        physical = table_for(name)
        alias = table.alias or (table.name if table.db else "this")
        table.replace(physical.as_(alias) if alias else physical)
    return query


def _duplicate_keys(check: CheckSpec, table: exp.Table) -> exp.Select:
    """Each key shared by several rows, with how many (``rows``). A single-column key ignores
    NULLs (as dbt's ``unique`` does); a composite key compares them as values (as GROUP BY does)."""
    columns = [_col(c) for c in check.columns]
    return (
        exp.select(*columns, exp.alias_(exp.Count(this=exp.Star()), "rows", quoted=True))
        .from_(table)
        .where(columns[0].copy().is_(exp.null()).not_() if len(columns) == 1 else None)
        .group_by(*columns)
        .having(exp.Count(this=exp.Star()) > 1)
    )


def _orphans(check: CheckSpec, table: exp.Table, table_for: TableFor) -> exp.Select:
    """Child rows whose non-null key has no parent row: a left join keeping the unmatched, which
    every engine plans as an anti-join (a correlated NOT EXISTS costs DuckDB twice as much)."""
    parent_schema, parent_name, parent_column = str(check.params["to"]).split(".")
    child_key = _col(check.columns[0], "child")
    parent_key = _col(parent_column, "parent")
    parent = table_for(f"{parent_schema}.{parent_name}")
    return (
        exp.select(exp.column(exp.Star(), table="child"))
        .from_(table.copy().as_("child"))
        .join(parent.as_("parent"), on=parent_key.eq(child_key), join_type="left")
        .where(exp.and_(child_key.copy().is_(exp.null()).not_(), parent_key.copy().is_(exp.null())))
    )


def _counted_with_samples(check: CheckSpec, table_for: TableFor, limit: int) -> CheckQuery:
    """The check's failing rows (duplicate keys for unique), the first ``limit`` of them, each
    with the total: a window over the failing rows, which are few when the data is good."""
    table = table_for(check.asset)
    if check.kind == "unique":
        keys = _duplicate_keys(check, table).subquery("dupes")
        # Each group of n rows holds n - 1 repeats; the most repeated keys come first.
        total = exp.Window(this=exp.Sum(this=exp.column("rows", quoted=True) - 1), over="OVER")
        query = (
            exp.select(exp.Star(), exp.alias_(total, FAILURES))
            .from_(keys)
            .order_by(exp.Ordered(this=exp.column("rows", quoted=True), desc=True))
        )
    else:
        failing = (
            _orphans(check, table, table_for)
            if check.kind == "relationships"
            else failing_rows(check, table_for)
        )
        count = exp.Window(this=exp.Count(this=exp.Star()), over="OVER")
        query = exp.select(exp.Star(), exp.alias_(count, FAILURES)).from_(failing.subquery("failing"))
    return CheckQuery(query.limit(limit), (check,), sampled=True)


def sample_query(check: CheckSpec, table: exp.Table, limit: int) -> exp.Query | None:
    """A few of a failed row check's failing rows; None for checks whose count query already
    brought its samples, or that judge the whole table."""
    condition = _failing_condition(check)
    if condition is None:
        return None
    return exp.select(exp.Star()).from_(table).where(condition).limit(limit)
