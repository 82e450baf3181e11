"""Cursors of incremental loads, kept in the lake and written in the load's own transaction.

A cursor is stored as text plus its engine type, so a timestamp with time zone, a decimal or a
big integer comes back exactly as it went in, without a round trip through Python types."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from gristmill.engines.base import Engine, Relation

CURSORS = Relation("_gristmill", "cursors")
_COLUMNS = (("asset", "VARCHAR"), ("value", "VARCHAR"), ("type", "VARCHAR"), ("run_id", "BIGINT"))


@dataclass(frozen=True)
class Cursor:
    value: str
    type: str

    def literal(self) -> exp.Expr:
        """The cursor as a typed SQL literal, e.g. ``CAST('2024-01-01 00:00:00+00' AS TIMESTAMPTZ)``."""
        return exp.cast(exp.Literal.string(self.value), exp.DataType.build(self.type, dialect="duckdb"))


def read_cursor(engine: Engine, asset: str) -> Cursor | None:
    if not engine.exists(CURSORS):
        return None
    query = (
        exp.select("value", "type")
        .from_(engine.table(CURSORS))
        .where(exp.column("asset").eq(exp.Literal.string(asset)))
    )
    rows = engine.query(query).to_pylist()
    return Cursor(rows[0]["value"], rows[0]["type"]) if rows else None


def write_cursor(engine: Engine, asset: str, cursor: Cursor, run_id: int) -> None:
    """Replace the asset's cursor; call inside the transaction that publishes the data it describes."""
    engine.ensure_table(CURSORS, list(_COLUMNS))
    target = engine.table(CURSORS)
    engine.execute(exp.delete(target, where=exp.column("asset").eq(exp.Literal.string(asset))))
    values = [exp.convert(v) for v in (asset, cursor.value, cursor.type, run_id)]
    engine.execute(exp.insert(exp.values([tuple(values)]), target, columns=[c for c, _ in _COLUMNS]))
