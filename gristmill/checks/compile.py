"""Compile check specs into SQL expressions (sqlglot ASTs) that count failing rows.

Single-column checks on one table fuse into one aggregate with a FILTER per check, so any
number of them costs one scan; composite keys and references get one query each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from gristmill.project.specs import CheckSpec

TableFor = Callable[[str], exp.Table]


@dataclass(frozen=True)
class CheckQuery:
    """A query returning one row; column ``i`` counts the rows failing ``checks[i]``."""

    query: exp.Query
    checks: tuple[CheckSpec, ...]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _failing_condition(check: CheckSpec) -> exp.Expr | None:
    column = _col(check.columns[0])
    if check.kind == "not_null":
        return column.is_(exp.null())
    if check.kind == "accepted_values":
        values = [exp.convert(v) for v in check.params["values"]]
        return exp.and_(column.is_(exp.null()).not_(), exp.In(this=column, expressions=values).not_())
    return None


def compile_checks(checks: Sequence[CheckSpec], table_for: TableFor) -> list[CheckQuery]:
    """All queries needed to evaluate ``checks``, which may span several assets."""
    queries: list[CheckQuery] = []
    by_asset: dict[str, list[CheckSpec]] = {}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    for asset, asset_checks in by_asset.items():
        fused: list[tuple[CheckSpec, exp.Expr]] = []
        for check in asset_checks:
            condition = _failing_condition(check)
            if condition is not None:
                counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))
                fused.append((check, counted))
            elif check.kind == "unique" and len(check.columns) == 1:
                column = _col(check.columns[0])
                fused.append(
                    (check, exp.Count(this=column) - exp.Count(this=exp.Distinct(expressions=[column])))
                )
            elif check.kind == "unique":
                queries.append(_composite_unique(check, table_for(asset)))
            elif check.kind == "relationships":
                queries.append(_relationship(check, table_for(asset), table_for))
        if fused:
            select = exp.select(*(exp.alias_(expr, f"c{i}") for i, (_, expr) in enumerate(fused)))
            queries.append(CheckQuery(select.from_(table_for(asset)), tuple(c for c, _ in fused)))
    return queries


def _composite_unique(check: CheckSpec, table: exp.Table) -> CheckQuery:
    """Rows sharing a key with an earlier row (the same count the single-column form gives)."""
    columns = [_col(c) for c in check.columns]
    groups = (
        exp.select(*columns, exp.alias_(exp.Count(this=exp.Star()), "n"))
        .from_(table)
        .group_by(*columns)
        .having(exp.Count(this=exp.Star()) > 1)
    )
    total = exp.Coalesce(this=exp.Sum(this=exp.column("n") - 1), expressions=[exp.Literal.number(0)])
    return CheckQuery(exp.select(exp.alias_(total, "c0")).from_(groups.subquery("dupes")), (check,))


def _relationship(check: CheckSpec, table: exp.Table, table_for: TableFor) -> CheckQuery:
    """Child rows whose non-null key has no parent row (an anti-join)."""
    parent_schema, parent_name, parent_column = str(check.params["to"]).split(".")
    child_key = _col(check.columns[0], "child")
    parent = table_for(f"{parent_schema}.{parent_name}")
    exists = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(parent.as_("parent"))
        .where(_col(parent_column, "parent").eq(child_key))
    )
    query = (
        exp.select(exp.alias_(exp.Count(this=exp.Star()), "c0"))
        .from_(table.copy().as_("child"))
        .where(exp.and_(child_key.is_(exp.null()).not_(), exists.not_()))
    )
    return CheckQuery(query, (check,))
