"""``gristmill compile``: each selected SQL model's query as a target's engine would run it.

A run reads the versioned physical table behind each upstream asset (named by the plan, which
needs the target's state); the compiled query reads the relations the environment serves instead
(the same rows), so it needs no engine, no state and no sources: it works for a target whose
engine is not reachable from here, or not built yet (``--dialect redshift``)."""

from __future__ import annotations

from collections.abc import Sequence

from gristmill.errors import ConfigError
from gristmill.plan import AssetGraph, select
from gristmill.plan.planner import view_schema
from gristmill.project import Project
from gristmill.runtime.planning import check_env
from gristmill.sql.render import render
from gristmill.sql.rewrite import render as point_at

DIALECTS = ("duckdb", "postgres", "redshift", "spark")
"""What ``--dialect`` takes: the engines' dialects, and those compiled for ahead of their engine."""


def compile_models(
    project: Project,
    graph: AssetGraph,
    selection: Sequence[str],
    exclude: Sequence[str],
    env: str,
    dialect: str | None,
) -> list[tuple[str, str]]:
    """(model, SQL) for each selected model in run order; a Python model's SQL is made when it
    runs, so it has a comment instead."""
    check_env(env)
    dialect = dialect or project.settings.engine.kind
    if dialect not in DIALECTS:
        raise ConfigError(f'--dialect {dialect}: unknown dialect', hint="use " + ", ".join(DIALECTS))
    prefix = project.settings.engine.schema_prefix
    found = []
    for name in select(graph, selection, exclude):
        asset = graph.assets[name]
        if asset.model is None or asset.kind == "stream":
            continue  # a source is loaded, a stream model runs under `gristmill stream`
        if asset.parsed is None:
            found.append((name, f"-- {asset.model.file}: a Python model; its query is made when it runs"))
            continue
        served = {}
        for upstream in asset.upstream:
            schema, table = upstream.split(".", 1)
            home = schema if graph.assets[upstream].kind == "source" else view_schema(schema, env)
            served[upstream] = (None, prefix + home, table)
        found.append((name, render(point_at(asset.parsed, served), dialect)))
    return found
