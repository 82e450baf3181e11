"""Where each stream model stands, kept in the lake beside its data.

One row per (target, topic, partition): the last offset processed, the newest event time seen
(the partition's watermark) and the end of the windows already emitted (``closed_until``).
Written in the transaction that writes the batch's results, so a restart resumes exactly where
the committed results end: nothing is lost, nothing is counted twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlglot

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


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def read_progress(
    engine: Engine, target: str, positions: Iterable[Position] | None = None
) -> dict[Position, Progress]:
    if not engine.exists(OFFSETS):
        return {}
    table = engine.table(OFFSETS).sql(dialect="duckdb")
    where = f"target = {literal(target)}"
    wanted = list(positions) if positions is not None else None
    if wanted is not None:
        if not wanted:
            return {}
        pairs = ", ".join(f"({literal(t)}, {p})" for t, p in wanted)
        where += f" AND (topic, partition_id) IN ({pairs})"
    rows = engine.query(
        f"SELECT topic, partition_id, last_offset, max_time, closed_until FROM {table} WHERE {where}"
    ).to_pylist()
    return {
        (r["topic"], r["partition_id"]): Progress(r["last_offset"], r["max_time"], r["closed_until"])
        for r in rows
    }


def write_progress(engine: Engine, target: str, progress: Mapping[Position, Progress], now: datetime) -> None:
    """Replace these partitions' rows; call inside the batch's transaction."""
    if not progress:
        return
    engine.ensure_table(OFFSETS, types.columns(OFFSET_COLUMNS))
    table = engine.table(OFFSETS).sql(dialect="duckdb")
    pairs = ", ".join(f"({literal(t)}, {p})" for t, p in progress)
    # Text, not trees: every batch runs these two (DuckDB SQL; streams run on the DuckDB engine).
    mine = f"target = {literal(target)} AND (topic, partition_id) IN ({pairs})"
    engine.execute(f"DELETE FROM {table} WHERE {mine}")
    values = ", ".join(
        f"({literal(target)}, {literal(t)}, {p}, {g.offset}, {literal(g.max_time)}, "
        f"{literal(g.closed_until)}, TIMESTAMPTZ '{now.isoformat()}')"
        for (t, p), g in progress.items()
    )
    engine.execute(f"INSERT INTO {table} VALUES {values}")


def forget(engine: Engine, target: str) -> None:
    """Drop a target's positions (its table was dropped: start from the beginning)."""
    if engine.exists(OFFSETS):
        table = engine.table(OFFSETS).sql(dialect="duckdb")
        engine.execute(
            sqlglot.parse_one(f"DELETE FROM {table} WHERE target = {literal(target)}", dialect="duckdb")
        )
