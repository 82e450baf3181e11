"""``gristmill compile``: each selected SQL model's query as a target's engine would run it.

A run reads the versioned physical table behind each upstream asset (named by the plan, which
needs the target's state); the compiled query reads the relations the environment serves instead
(the same rows), so it needs no engine, no state and no sources: it works for a target whose
engine is not reachable from here, or not built yet (``--dialect redshift``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot.errors import UnsupportedError

from gristmill.errors import ConfigError
from gristmill.plan import Asset, AssetGraph, select
from gristmill.plan.planner import view_schema
from gristmill.project import Project
from gristmill.runtime.planning import check_env
from gristmill.sql.render import render
from gristmill.sql.rewrite import render as point_at

DIALECTS = ("duckdb", "postgres", "redshift", "spark")
"""What ``--dialect`` takes: the engines' dialects, and those compiled for ahead of their engine."""


@dataclass(frozen=True)
class CompiledModel:
    """One model's SQL for a dialect; None for a Python model (its query is made when it runs), or
    with the ``problem`` that the dialect cannot spell the model."""

    model: str
    file: str
    sql: str | None
    problem: str | None = None


def compile_models(
    project: Project,
    graph: AssetGraph,
    selection: Sequence[str],
    exclude: Sequence[str],
    env: str,
    dialect: str | None,
) -> list[CompiledModel]:
    """Each selected SQL or Python model in run order (sources are loaded, not compiled; stream
    models run under ``gristmill stream``)."""
    check_env(env)
    dialect = dialect or project.settings.engine.kind
    if dialect not in DIALECTS:
        raise ConfigError(f"--dialect {dialect}: unknown dialect", hint="use " + ", ".join(DIALECTS))
    prefix = project.settings.engine.schema_prefix
    found = []
    for name in select(graph, selection, exclude):
        asset = graph.assets[name]
        if asset.model is not None and asset.kind != "stream":
            found.append(_compiled(graph, asset, env, dialect, prefix))
    return found


def _compiled(graph: AssetGraph, asset: Asset, env: str, dialect: str, prefix: str) -> CompiledModel:
    assert asset.model is not None
    file = asset.model.file
    if asset.parsed is None:
        return CompiledModel(asset.name, file, None)
    served = {}
    for upstream in asset.upstream:
        schema, table = upstream.split(".", 1)
        home = schema if graph.assets[upstream].kind == "source" else view_schema(schema, env)
        served[upstream] = (None, prefix + home, table)
    try:
        return CompiledModel(asset.name, file, render(point_at(asset.parsed, served), dialect, strict=True))
    except UnsupportedError as err:
        return CompiledModel(asset.name, file, None, f"{dialect} cannot run it as written: {err}")
