"""Live versions of physical tables, kept in the lake itself.

A version row is written in the same transaction as the data it describes, so a crash can
never leave a fingerprint that does not match the published table (or the reverse). A model
has one physical table per version; a source table is its own physical table.

The statements are built by pure functions (``select_versions`` … ``forget_versions_statement``)
over the table's name, so they can be rendered for any engine and checked as golden SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.plan.planner import Recorded
from gristmill.sql import types

VERSIONS = Relation("_gristmill", "table_versions")
_COLUMNS = ("physical", "asset", "fingerprint", "parts", "run_id", "rows", "built_at")
_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "VARCHAR")


def select_versions(table: exp.Table) -> exp.Select:
    return exp.select(*_COLUMNS).from_(table.copy())


def delete_version(table: exp.Table, physical: str) -> exp.Delete:
    return exp.delete(table.copy(), where=exp.column("physical").eq(exp.Literal.string(physical)))


def insert_version(
    table: exp.Table,
    physical: str,
    asset: str,
    fingerprint: str,
    parts: dict[str, object],
    run_id: int,
    rows: int | None,
    built_at: str,
) -> exp.Insert:
    """One version row; ``parts`` is stored as JSON text with sorted keys (stable across runs)."""
    values = (
        physical,
        asset,
        fingerprint,
        json.dumps(parts, sort_keys=True, default=str),
        run_id,
        rows,
        built_at,
    )
    return exp.insert(
        exp.values([tuple(exp.convert(v) for v in values)]), table.copy(), columns=list(_COLUMNS)
    )


def forget_versions_statement(table: exp.Table, physical: Sequence[str]) -> exp.Delete:
    names = [exp.Literal.string(p) for p in physical]
    return exp.delete(table.copy(), where=exp.column("physical").isin(*names))


def read_versions(engine: Engine) -> dict[str, Recorded]:
    """Every physical table's recorded version, keyed by ``schema.table``."""
    if not engine.exists(VERSIONS):
        return {}
    found = engine.rows(select_versions(engine.table(VERSIONS)))
    return {
        row["physical"]: Recorded(
            row["fingerprint"], json.loads(row["parts"]), row["run_id"], row["rows"], row["built_at"]
        )
        for row in found
    }


def record_version(
    engine: Engine,
    physical: str,
    asset: str,
    fingerprint: str,
    parts: dict[str, object],
    run_id: int,
    rows: int | None,
    *,
    replace: bool = True,
) -> None:
    """Write the table's version row, replacing an earlier one unless the caller knows there is
    none (a new physical table); call inside the transaction that publishes the data."""
    engine.ensure_table(VERSIONS, types.columns(zip(_COLUMNS, _TYPES, strict=True)))
    target = engine.table(VERSIONS)
    if replace:
        engine.execute(delete_version(target, physical))
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    engine.execute(insert_version(target, physical, asset, fingerprint, parts, run_id, rows, built_at))


def forget_versions(engine: Engine, physical: Sequence[str]) -> None:
    if physical and engine.exists(VERSIONS):
        engine.execute(forget_versions_statement(engine.table(VERSIONS), physical))
