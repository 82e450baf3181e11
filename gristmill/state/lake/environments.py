"""Environments: which physical table each model of an environment serves, and its views.

An environment is a set of views (``<schema>.<name>`` for prod, ``<schema>__<env>.<name>``
otherwise) over physical tables named by version. Switching an environment rewrites its views
and its pointer rows in one transaction, so readers see all of a run's models change at once;
promoting one environment to another copies pointers and builds nothing.

The statements are built by pure functions over the pointer table's name (``select_pointers`` …
``view_query``), so they can be rendered for any engine and checked as golden SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.plan.planner import view_schema
from gristmill.sql import types

ENVIRONMENTS = Relation("_gristmill", "environments")
_COLUMNS = ("env", "asset", "physical", "run_id", "switched_at")
_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR")


def select_pointers(table: exp.Table, env: str) -> exp.Select:
    return (
        exp.select("asset", "physical")
        .from_(table.copy())
        .where(exp.column("env").eq(exp.Literal.string(env)))
    )


def select_all_pointers(table: exp.Table) -> exp.Select:
    return exp.select("env", "asset", "physical").from_(table.copy())


def delete_pointers(table: exp.Table, env: str, assets: Sequence[str]) -> exp.Delete:
    return exp.delete(
        table.copy(),
        where=exp.and_(
            exp.column("env").eq(exp.Literal.string(env)),
            exp.column("asset").isin(*(exp.Literal.string(n) for n in assets)),
        ),
    )


def insert_pointers(
    table: exp.Table, env: str, pointers: Mapping[str, str], run_id: int, switched_at: str
) -> exp.Insert:
    """One row per (asset, physical table) the environment now serves."""
    rows = [
        tuple(exp.convert(v) for v in (env, asset, physical, run_id, switched_at))
        for asset, physical in pointers.items()
    ]
    return exp.insert(exp.values(rows), table.copy(), columns=list(_COLUMNS))


def view_query(physical: exp.Table) -> exp.Select:
    """What an environment's view of a model selects: its physical table, as the engine names it
    (``Engine.table``: a server engine's schema prefix included)."""
    table = physical.copy()
    # Unqualified by catalog: a DuckLake view resolves in its own catalog, whatever a reader
    # attaches it as.
    table.set("catalog", None)
    return exp.select("*").from_(table)


def read_pointers(engine: Engine, env: str) -> dict[str, str]:
    """asset -> physical table (``schema.table``) the environment serves."""
    if not engine.exists(ENVIRONMENTS):
        return {}
    return {
        row["asset"]: row["physical"] for row in engine.rows(select_pointers(engine.table(ENVIRONMENTS), env))
    }


def read_all_pointers(engine: Engine) -> dict[str, dict[str, str]]:
    """environment -> asset -> physical table, for every environment."""
    if not engine.exists(ENVIRONMENTS):
        return {}
    found: dict[str, dict[str, str]] = {}
    for row in engine.rows(select_all_pointers(engine.table(ENVIRONMENTS))):
        found.setdefault(row["env"], {})[row["asset"]] = row["physical"]
    return found


def switch(
    engine: Engine,
    env: str,
    pointers: Mapping[str, str],
    removed: Sequence[str],
    run_id: int,
) -> None:
    """Point the environment's views at new physical tables and drop views of removed models.
    Call inside a transaction: readers see the whole switch or none of it."""
    engine.ensure_table(ENVIRONMENTS, types.columns(zip(_COLUMNS, _TYPES, strict=True)))
    target = engine.table(ENVIRONMENTS)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for asset in removed:
        engine.drop_view(_view(asset, env))
    names = [*pointers, *removed]
    if names:
        engine.execute(delete_pointers(target, env, names))
    for asset, physical in pointers.items():
        engine.create_view_as(_view(asset, env), view_query(engine.table(Relation.of(physical))))
    if pointers:
        engine.execute(insert_pointers(target, env, pointers, run_id, now))


def _view(asset: str, env: str) -> Relation:
    schema, name = asset.split(".", 1)
    return Relation(view_schema(schema, env), name)
