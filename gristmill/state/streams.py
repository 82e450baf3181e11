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


def value(of: object) -> exp.Expr:
    """``of`` as a SQL literal (event times are naive UTC timestamps)."""
    if of is None:
        return exp.null()
    if isinstance(of, datetime):
        text = of.replace(tzinfo=None).isoformat(sep=" ")
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)
    if isinstance(of, bool):
        return exp.Boolean(this=of)
    if isinstance(of, int | float):
        return exp.Literal.number(of)
    return exp.Literal.string(str(of))


def _mine(target: str, positions: Iterable[Position]) -> exp.Expr:
    """The rows of ``target`` for ``positions``."""
    pairs = [exp.Tuple(expressions=[value(t), value(p)]) for t, p in positions]
    partitions = exp.Tuple(expressions=[exp.column("topic"), exp.column("partition_id")])
    return exp.and_(
        exp.column("target").eq(value(target)),
        exp.In(this=partitions, expressions=pairs),
    )


def read_statement(table: exp.Table, target: str, positions: Iterable[Position] | None) -> exp.Select:
    """The committed progress of ``target`` (of ``positions`` only, when given)."""
    where = exp.column("target").eq(value(target)) if positions is None else _mine(target, positions)
    columns = ("topic", "partition_id", "last_offset", "max_time", "closed_until")
    return exp.select(*columns).from_(table.copy()).where(where)


def write_statements(
    table: exp.Table, target: str, progress: Mapping[Position, Progress], now: datetime
) -> tuple[exp.Delete, exp.Insert]:
    """Replace these partitions' rows: delete them, insert them anew."""
    delete = exp.delete(table.copy(), where=_mine(target, progress))
    at = exp.cast(exp.Literal.string(now.isoformat()), exp.DataType.Type.TIMESTAMPTZ)
    rows = [
        exp.Tuple(
            expressions=[
                value(target),
                value(t),
                value(p),
                value(g.offset),
                value(g.max_time),
                value(g.closed_until),
                at.copy(),
            ]
        )
        for (t, p), g in progress.items()
    ]
    return delete, exp.insert(exp.Values(expressions=rows), table.copy())


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
    engine.ensure_table(OFFSETS, list(OFFSET_COLUMNS))
    for statement in write_statements(engine.table(OFFSETS), target, progress, now):
        engine.execute(statement)


def forget_statement(table: exp.Table, target: str) -> exp.Delete:
    return exp.delete(table.copy(), where=exp.column("target").eq(value(target)))


def forget(engine: Engine, target: str) -> None:
    """Drop a target's positions (its table was dropped: start from the beginning)."""
    if engine.exists(OFFSETS):
        engine.execute(forget_statement(engine.table(OFFSETS), target))
