"""Environments: which physical table each model of an environment serves, and its views.

An environment is a set of views (``<schema>.<name>`` for prod, ``<schema>__<env>.<name>``
otherwise) over physical tables named by version. Switching an environment rewrites its views
and its pointer rows in one transaction, so readers see all of a run's models change at once;
promoting one environment to another copies pointers and builds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.plan.planner import view_schema

ENVIRONMENTS = Relation("_gristmill", "environments")
_COLUMNS = ("env", "asset", "physical", "run_id", "switched_at")
_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR")


def read_pointers(engine: Engine, env: str) -> dict[str, str]:
    """asset -> physical table (``schema.table``) the environment serves."""
    if not engine.exists(ENVIRONMENTS):
        return {}
    query = (
        exp.select("asset", "physical")
        .from_(engine.table(ENVIRONMENTS))
        .where(exp.column("env").eq(exp.Literal.string(env)))
    )
    return {row["asset"]: row["physical"] for row in engine.rows(query)}


def read_all_pointers(engine: Engine) -> dict[str, dict[str, str]]:
    """environment -> asset -> physical table, for every environment."""
    if not engine.exists(ENVIRONMENTS):
        return {}
    found: dict[str, dict[str, str]] = {}
    for row in engine.rows(exp.select("env", "asset", "physical").from_(engine.table(ENVIRONMENTS))):
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
    engine.ensure_table(ENVIRONMENTS, list(zip(_COLUMNS, _TYPES, strict=True)))
    target = engine.table(ENVIRONMENTS)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for asset in removed:
        engine.drop_view(_view(asset, env))
    names = [*pointers, *removed]
    if names:
        engine.execute(
            exp.delete(
                target,
                where=exp.and_(
                    exp.column("env").eq(exp.Literal.string(env)),
                    exp.column("asset").isin(*(exp.Literal.string(n) for n in names)),
                ),
            )
        )
    for asset, physical in pointers.items():
        schema, name = physical.split(".", 1)
        # Unqualified by catalog: a DuckLake view resolves in its own catalog, whatever a reader
        # attaches it as.
        source = exp.table_(name, db=schema, quoted=True)
        engine.create_view_as(_view(asset, env), exp.select("*").from_(source))
    if pointers:
        rows = [
            tuple(exp.convert(v) for v in (env, asset, physical, run_id, now))
            for asset, physical in pointers.items()
        ]
        engine.execute(exp.insert(exp.values(rows), target, columns=list(_COLUMNS)))


def _view(asset: str, env: str) -> Relation:
    schema, name = asset.split(".", 1)
    return Relation(view_schema(schema, env), name)
