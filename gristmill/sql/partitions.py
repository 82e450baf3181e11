"""SQL for models split by a declared list of values (static partitions): replace the rows of
some values, find rows that belong to no declared value, and keep which values are built."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from gristmill.project.specs import PartitionValue
from gristmill.sql.writes import col, insert

PARTITION_COLUMNS = (("target", "VARCHAR"), ("partition", "VARCHAR"), ("run_id", "BIGINT"))


def literal(value: PartitionValue) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def among(column: str, values: Sequence[PartitionValue]) -> exp.Expr:
    return exp.In(this=col(column), expressions=[literal(v) for v in values])


def only(query: exp.Query, column: str, values: Sequence[PartitionValue]) -> exp.Select:
    """The query's rows whose ``column`` is one of ``values`` (a filter the engine pushes down)."""
    return exp.select("*").from_(query.subquery("q", copy=True)).where(among(column, values))


def replace_partitions(
    target: exp.Table, query: exp.Query, columns: Sequence[str], column: str, values: Sequence[PartitionValue]
) -> list[exp.Expr]:
    """Delete the target's rows of these values and insert the query's rows of them."""
    rows = exp.select(*(col(c) for c in columns)).from_(only(query, column, values).subquery("part"))
    return [exp.delete(target.copy(), where=among(column, values)), insert(target, rows, columns)]


def strays(query: exp.Query, column: str, values: Sequence[PartitionValue], limit: int = 5) -> exp.Select:
    """Up to ``limit`` distinct values of ``column`` (NULL included) outside ``values``, with
    their row counts: rows no declared partition would hold."""
    outside = exp.or_(exp.Is(this=col(column), expression=exp.Null()), exp.not_(among(column, values)))
    return (
        exp.select(col(column), exp.alias_(exp.Count(this=exp.Star()), "rows"))
        .from_(query.subquery("q", copy=True))
        .where(outside)
        .group_by(col(column))
        .order_by(exp.Ordered(this=exp.column("rows"), desc=True))
        .limit(limit)
    )


def _for_target(name: str) -> exp.Expr:
    return exp.EQ(this=col("target"), expression=exp.Literal.string(name))


def forget_partitions(table: exp.Table, target: str, keys: Sequence[str] | None = None) -> exp.Delete:
    where = _for_target(target)
    if keys is not None:
        where = exp.and_(
            where, exp.In(this=col("partition"), expressions=[exp.Literal.string(k) for k in keys])
        )
    return exp.delete(table.copy(), where=where)


def record_partitions(table: exp.Table, target: str, keys: Sequence[str], run_id: int) -> exp.Insert:
    rows = exp.Values(
        expressions=[
            exp.Tuple(
                expressions=[
                    exp.Literal.string(target),
                    exp.Literal.string(key),
                    exp.cast(exp.Literal.number(run_id), "BIGINT"),
                ]
            )
            for key in keys
        ],
        alias=exp.TableAlias(this=exp.to_identifier("p")),
    )
    return insert(table, exp.select("*").from_(rows), [name for name, _ in PARTITION_COLUMNS])


def read_partitions(table: exp.Table, target: str) -> exp.Select:
    return (
        exp.select(col("partition")).from_(table.copy()).where(_for_target(target)).order_by(col("partition"))
    )
