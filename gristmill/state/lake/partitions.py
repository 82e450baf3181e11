"""The values of a statically partitioned model that are built, kept in the lake beside its data.

One row per built value (``target``, ``partition``, ``run_id``), written in the transaction that
writes the value's rows, so a crash leaves both as they were and a backfill of the missing
values builds exactly those."""

from __future__ import annotations

from collections.abc import Sequence

from gristmill.engines.base import Engine, Relation
from gristmill.sql import partitions as sql
from gristmill.sql import types

PARTITIONS = Relation("_gristmill", "partitions")


def read_partitions(engine: Engine, target: str) -> list[str]:
    """The built values of ``target`` (``schema.name``), as text."""
    if not engine.exists(PARTITIONS):
        return []
    rows = engine.query(sql.read_partitions(engine.table(PARTITIONS), target))
    return [str(value) for value in rows.column("partition").to_pylist()]


def record_partitions(engine: Engine, target: str, keys: Sequence[str], run_id: int) -> None:
    """Record these values of ``target`` as built by ``run_id``. Call inside the data's transaction."""
    if not keys:
        return
    engine.ensure_table(PARTITIONS, types.columns(sql.PARTITION_COLUMNS))
    table = engine.table(PARTITIONS)
    engine.execute(sql.forget_partitions(table, target, keys))
    engine.execute(sql.record_partitions(table, target, keys, run_id))


def forget_partitions(engine: Engine, target: str) -> None:
    """Drop every recorded value of ``target`` (a full build records them again)."""
    if engine.exists(PARTITIONS):
        engine.execute(sql.forget_partitions(engine.table(PARTITIONS), target))
