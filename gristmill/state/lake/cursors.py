"""Cursors of incremental loads, kept in the lake and written in the load's own transaction.

A cursor is stored as text plus its engine type, so a timestamp with time zone, a decimal or a
big integer comes back exactly as it went in, without a round trip through Python types. The
type is the engine's own spelling, so a cursor carries the dialect it is spelled in.

The statements are built by pure functions over the cursor table's name (``select_cursor``,
``delete_cursor``, ``insert_cursor``), so they can be rendered for any engine and checked as
golden SQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.sql import types

CURSORS = Relation("_gristmill", "cursors")
_COLUMNS = (("asset", "VARCHAR"), ("value", "VARCHAR"), ("type", "VARCHAR"), ("run_id", "BIGINT"))


@dataclass(frozen=True)
class Cursor:
    value: str
    type: str
    """The value's type as the engine names it (e.g. ``TIMESTAMP WITH TIME ZONE``)."""
    dialect: str
    """The engine's dialect, in which ``type`` is spelled."""

    def literal(self) -> exp.Expr:
        """The cursor as a typed SQL literal, e.g. ``CAST('2024-01-01 00:00:00+00' AS TIMESTAMPTZ)``."""
        return exp.cast(exp.Literal.string(self.value), exp.DataType.build(self.type, dialect=self.dialect))


def select_cursor(table: exp.Table, asset: str) -> exp.Select:
    return (
        exp.select("value", "type")
        .from_(table.copy())
        .where(exp.column("asset").eq(exp.Literal.string(asset)))
    )


def delete_cursor(table: exp.Table, asset: str) -> exp.Delete:
    return exp.delete(table.copy(), where=exp.column("asset").eq(exp.Literal.string(asset)))


def insert_cursor(table: exp.Table, asset: str, cursor: Cursor, run_id: int) -> exp.Insert:
    values = [exp.convert(v) for v in (asset, cursor.value, cursor.type, run_id)]
    return exp.insert(exp.values([tuple(values)]), table.copy(), columns=[c for c, _ in _COLUMNS])


def read_cursor(engine: Engine, asset: str) -> Cursor | None:
    if not engine.exists(CURSORS):
        return None
    rows = engine.query(select_cursor(engine.table(CURSORS), asset)).to_pylist()
    return Cursor(rows[0]["value"], rows[0]["type"], engine.dialect) if rows else None


def write_cursor(engine: Engine, asset: str, cursor: Cursor, run_id: int) -> None:
    """Replace the asset's cursor; call inside the transaction that publishes the data it describes."""
    engine.ensure_table(CURSORS, types.columns(_COLUMNS))
    target = engine.table(CURSORS)
    engine.execute(delete_cursor(target, asset))
    engine.execute(insert_cursor(target, asset, cursor, run_id))
