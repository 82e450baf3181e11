"""Set aside the rows that fail `quarantine` and `drop` checks, before the other checks run.

Inside the build's transaction: one fused query counts each check's failing rows; rows failing a
quarantine check are copied to ``<asset>__quarantine`` (the run, the violated checks, the row as
JSON — the layout the loader uses for contract violations); then every failing row is deleted
from the new version. Published rows plus quarantined plus dropped rows equal what was built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from gristmill.checks.compile import failing_row
from gristmill.engines.base import Engine, Relation
from gristmill.project.specs import CheckSpec
from gristmill.sql import functions, types, writes

QUARANTINE_COLUMNS = (("_gm_run_id", "BIGINT"), ("_gm_reason", "VARCHAR"), ("_gm_record", "VARCHAR"))


@dataclass(frozen=True)
class SetAside:
    failures: dict[CheckSpec, int]
    """Failing rows per check (a row may fail several)."""
    quarantined: int
    dropped: int


def set_aside(
    engine: Engine, target: Relation, quarantine: Relation, checks: Sequence[CheckSpec], run_id: int
) -> SetAside:
    table = engine.table(target)
    conditions = [failing_row(check) for check in checks]
    kept = [c for c, check in zip(conditions, checks, strict=True) if check.severity == "quarantine"]
    counts = exp.select(
        *(
            exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=c)), f"c{i}")
            for i, c in enumerate(conditions)
        ),
        exp.alias_(
            exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=exp.or_(*kept))), "moved"
        )
        if kept
        else exp.alias_(exp.Literal.number(0), "moved"),
        exp.alias_(
            exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=exp.or_(*conditions))),
            "failing",
        ),
    ).from_(table)
    row = engine.row(counts) or {}
    failures = {check: int(row.get(f"c{i}") or 0) for i, check in enumerate(checks)}
    moved, failing = int(row.get("moved") or 0), int(row.get("failing") or 0)
    if moved:
        reason = _violations(kept, [c for c in checks if c.severity == "quarantine"])
        columns = [name for name, _ in engine.describe(table)]
        where = exp.or_(*(c.copy() for c in kept))
        copy_to_quarantine(engine, table, columns, where, reason, quarantine, run_id)
    if failing:
        engine.execute(exp.delete(table, where=exp.or_(*(c.copy() for c in conditions))))
    return SetAside(failures, moved, failing - moved)


def copy_to_quarantine(
    engine: Engine,
    source: exp.Table,
    columns: Sequence[str],
    where: exp.Expr,
    reason: exp.Expr,
    quarantine: Relation,
    run_id: int,
) -> None:
    """Append the rows of ``source`` matching ``where`` to ``quarantine``: the run, why, and the
    row itself as JSON (so rows of any shape fit one table)."""
    engine.ensure_table(quarantine, types.columns(QUARANTINE_COLUMNS))
    # The portable helpers: engines spell a struct as JSON differently (PostgreSQL: jsonb).
    record = functions.to_json(functions.struct_of([(c, exp.column(c, quoted=True)) for c in columns]))
    rows = (
        exp.select(
            exp.alias_(exp.convert(run_id), "_gm_run_id"),
            exp.alias_(reason, "_gm_reason"),
            exp.alias_(record, "_gm_record"),
        )
        .from_(source)
        .where(where)
    )
    engine.execute(writes.insert(engine.table(quarantine), rows, [c for c, _ in QUARANTINE_COLUMNS]))


def _violations(conditions: Sequence[exp.Expr], checks: Sequence[CheckSpec]) -> exp.Expr:
    """The names of the checks a row fails, joined by "; " (DuckDB's concat_ws skips NULLs; an
    Anonymous call keeps sqlglot from rewriting it for dialects whose concat_ws does not)."""
    return exp.Anonymous(
        this="concat_ws",
        expressions=[
            exp.Literal.string("; "),
            *(
                exp.Case(ifs=[exp.If(this=c.copy(), true=exp.Literal.string(check.name))])
                for c, check in zip(conditions, checks, strict=True)
            ),
        ],
    )
