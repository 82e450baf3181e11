"""Where each stream model stands, kept in the lake beside its data.

One row per (target, topic, partition): the last offset processed, the newest event time seen
(the partition's watermark) and the end of the windows already emitted (``closed_until``).
Written in the transaction that writes the batch's results, so a restart resumes exactly where
the committed results end: nothing is lost, nothing is counted twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from gristmill.connectors.streams.feed import Position
from gristmill.engines.base import Engine, Relation
from gristmill.sql import types

OFFSETS = Relation("_gristmill", "stream_offsets")
OFFSET_COLUMNS = (
    ("target", "VARCHAR"),
    ("topic", "VARCHAR"),
    ("partition_id", "INTEGER"),
    ("last_offset", "BIGINT"),
    ("max_time", "TIMESTAMP"),
    ("closed_until", "TIMESTAMP"),
    ("updated_at", "TIMESTAMP WITH TIME ZONE"),
)
REJECTED = Relation("_gristmill", "stream_rejected")
REJECTED_COLUMNS = (
    ("target", "VARCHAR"),
    ("topic", "VARCHAR"),
    ("partition", "INTEGER"),
    ("offset", "BIGINT"),
    ("timestamp", "TIMESTAMP WITH TIME ZONE"),
    ("key", "BLOB"),
    ("value", "BLOB"),
    ("reason", "VARCHAR"),
    ("rejected_at", "TIMESTAMP WITH TIME ZONE"),
)


@dataclass
class Progress:
    """One partition of a stream model's input, as committed."""

    offset: int
    max_time: datetime | None = None
    closed_until: datetime | None = None


_TIMESTAMP = exp.DataType.Type.TIMESTAMP
_TIMESTAMPTZ = exp.DataType.Type.TIMESTAMPTZ

# Every batch builds and runs these statements: they are built from node constructors, which
# neither parse nor copy (the builder functions' parsing and copying cost ten times as much).


def _column(name: str) -> exp.Column:
    return exp.Column(this=exp.Identifier(this=name, quoted=False))


def value(of: object) -> exp.Expr:
    """``of`` as a SQL literal (event times are naive UTC timestamps)."""
    if of is None:
        return exp.Null()
    if isinstance(of, datetime):
        text = of.replace(tzinfo=None).isoformat(sep=" ")
        return exp.Cast(this=exp.Literal.string(text), to=exp.DataType(this=_TIMESTAMP))
    if isinstance(of, bool):
        return exp.Boolean(this=of)
    if isinstance(of, int | float):
        return exp.Literal.number(of)
    return exp.Literal.string(str(of))


def _of_target(target: str) -> exp.Expr:
    return exp.EQ(this=_column("target"), expression=value(target))


def _mine(target: str, positions: Iterable[Position]) -> exp.Expr:
    """The rows of ``target`` for ``positions``."""
    pairs = [exp.Tuple(expressions=[value(t), value(p)]) for t, p in positions]
    partitions = exp.Tuple(expressions=[_column("topic"), _column("partition_id")])
    return exp.And(this=_of_target(target), expression=exp.In(this=partitions, expressions=pairs))


def read_statement(table: exp.Table, target: str, positions: Iterable[Position] | None) -> exp.Select:
    """The committed progress of ``target`` (of ``positions`` only, when given)."""
    where = _of_target(target) if positions is None else _mine(target, positions)
    columns = ("topic", "partition_id", "last_offset", "max_time", "closed_until")
    return exp.Select(
        expressions=[_column(c) for c in columns],
        from_=exp.From(this=table.copy()),
        where=exp.Where(this=where),
    )


def write_statements(
    table: exp.Table, target: str, progress: Mapping[Position, Progress], now: datetime
) -> tuple[exp.Delete, exp.Insert]:
    """Replace these partitions' rows: delete them, insert them anew."""
    delete = exp.Delete(this=table.copy(), where=exp.Where(this=_mine(target, progress)))
    at = now.isoformat()
    rows = [
        exp.Tuple(
            expressions=[
                value(target),
                value(t),
                value(p),
                value(g.offset),
                value(g.max_time),
                value(g.closed_until),
                exp.Cast(this=exp.Literal.string(at), to=exp.DataType(this=_TIMESTAMPTZ)),
            ]
        )
        for (t, p), g in progress.items()
    ]
    return delete, exp.Insert(this=table.copy(), expression=exp.Values(expressions=rows))


def read_progress(
    engine: Engine, target: str, positions: Iterable[Position] | None = None
) -> dict[Position, Progress]:
    if not engine.exists(OFFSETS):
        return {}
    wanted = list(positions) if positions is not None else None
    if wanted is not None and not wanted:
        return {}
    rows = engine.query(read_statement(engine.table(OFFSETS), target, wanted)).to_pylist()
    return {
        (r["topic"], r["partition_id"]): Progress(r["last_offset"], r["max_time"], r["closed_until"])
        for r in rows
    }


def write_progress(engine: Engine, target: str, progress: Mapping[Position, Progress], now: datetime) -> None:
    """Replace these partitions' rows; call inside the batch's transaction."""
    if not progress:
        return
    engine.ensure_table(OFFSETS, types.columns(OFFSET_COLUMNS))
    for statement in write_statements(engine.table(OFFSETS), target, progress, now):
        engine.execute(statement)


def forget_statement(table: exp.Table, target: str) -> exp.Delete:
    return exp.Delete(this=table.copy(), where=exp.Where(this=_of_target(target)))


def forget(engine: Engine, target: str) -> None:
    """Drop a target's positions (its table was dropped: start from the beginning)."""
    if engine.exists(OFFSETS):
        engine.execute(forget_statement(engine.table(OFFSETS), target))
