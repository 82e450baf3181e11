"""What the lake publishes, read: the assets with their last build, queries against an
environment's views, column lineage, and the checks of the tables an environment serves."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.engines.base import Engine, Relation
from gristmill.errors import GristmillError, SelectionError
from gristmill.plan import Asset, AssetGraph, Plan, select
from gristmill.plan.lineage import Lineage
from gristmill.plan.planner import view_schema
from gristmill.runtime import planning
from gristmill.runtime.session import Session
from gristmill.state import read_versions
from gristmill.state.lake.environments import read_pointers

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.runtime.results import CheckRun


@dataclass(frozen=True)
class AssetInfo:
    name: str
    kind: str
    rows: int | None
    built_at: str | None
    last_status: str | None
    last_run: int | None
    upstream: tuple[str, ...]
    owner: str | None = None


def split_column(target: str, graph: AssetGraph) -> tuple[str, str | None]:
    """``schema.name`` or ``schema.name.column`` (a bare ``name`` finds its schema)."""
    if target in graph.assets:
        return target, None
    by_name = {a.split(".", 1)[1]: a for a in graph.assets}
    if target in by_name:
        return by_name[target], None
    asset, _, column = target.rpartition(".")
    asset = by_name.get(asset, asset)
    if asset not in graph.assets:
        raise SelectionError(
            f'no asset "{target}"', hint=did_you_mean(target, graph.assets) or "`gristmill ls` lists them"
        )
    return asset, column


def in_environment(
    sql: str,
    schemas: set[str],
    env: str,
    dialect: str,
    engine: Engine | None = None,
    managed: Collection[str] = (),
) -> str:
    """The query (SQL the engine reads, in its ``dialect``) with each model schema pointed at the
    environment's views. With ``engine``, every table of a schema the project manages (its models',
    its sources' in ``managed``) is named as that engine names it (a PostgreSQL target's
    ``schema_prefix`` added), so a query reads the same names on every target."""
    try:
        tree = sqlglot.parse_one(sql, dialect=dialect)
    except sqlglot.errors.ParseError:
        return sql  # the engine reports the error
    changed = False
    for table in tree.find_all(exp.Table):
        if table.catalog or not table.db or (table.db not in schemas and table.db not in managed):
            continue
        schema = view_schema(table.db, env) if table.db in schemas and env != "prod" else table.db
        named = engine.table(Relation(schema, table.name)) if engine is not None else None
        if named is None or named.db == schema:  # the engine's default catalog finds it
            if schema != table.db:
                table.set("db", exp.to_identifier(schema))
                changed = True
            continue
        table.set("db", named.args.get("db"))
        table.set("catalog", named.args.get("catalog"))
        table.set("this", named.this)
        changed = True
    # a query that names nothing to rewrite reaches the engine as written, not re-spelled
    return tree.sql(dialect=dialect) if changed else sql


def _owner(asset: Asset) -> str | None:
    if asset.contract is not None and asset.contract.owner:
        return asset.contract.owner
    return asset.model.owner if asset.model is not None else None


def _no_data() -> GristmillError:
    return GristmillError("this project has no data yet", hint="run `gristmill run` first")


def query(session: Session, sql: str, env: str) -> pa.Table:
    planning.check_env(env)
    with session.engine(read_only=True) as engine:
        if engine is None:
            raise _no_data()
        project = session.project
        sources = {t.asset.split(".", 1)[0] for s in project.sources.values() for t in s.tables.values()}
        models = {m.split(".", 1)[0] for m in project.models}
        sql = in_environment(sql, models, env, engine.dialect, engine, sources)
        return engine.query(sql)


def assets(session: Session, graph: AssetGraph, selection: Sequence[str], env: str) -> list[AssetInfo]:
    with session.history() as history:
        last = history.runs.last_build()
        # The last run's copy of the lake state answers while the lake has not committed
        # since: no engine, no catalog attached (~0.5 CPU-s saved).
        lake = planning.remembered(session, history, planning.snapshot(session))
    if lake is not None:
        recorded, pointers = lake.versions, lake.env(env)
    else:
        with session.engine(read_only=True) as engine:
            recorded = read_versions(engine) if engine else {}
            pointers = read_pointers(engine, env) if engine else {}
    infos = []
    for name in select(graph, selection, compiled=False):  # listing needs no SQL
        asset, version = graph.assets[name], recorded.get(pointers.get(name, name))
        run_id, status, _ = last.get(name, (None, None, None))
        infos.append(
            AssetInfo(
                name,
                asset.kind,
                version.rows if version else None,
                version.built_at if version else None,
                status,
                run_id,
                asset.upstream,
                _owner(asset),
            )
        )
    return infos


def lineage(graph: AssetGraph, plan: Plan, target: str) -> Lineage:
    """Column lineage of an asset or one of its columns, upstream and downstream, from the
    plan's analyses."""
    asset, column = split_column(target, graph)
    edges: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    columns: dict[str, tuple[str, ...]] = {}
    for step in plan.steps:
        if step.columns is not None:
            columns[step.name] = step.columns
        if step.analysis is not None and step.analysis.exact:
            for name, trace in step.analysis.traces.items():
                if name:
                    edges[(step.name, name)] = trace.reads
    return Lineage.build(asset, column, edges, columns, graph)


def check(
    session: Session,
    graph: AssetGraph,
    selection: Sequence[str],
    exclude: Sequence[str],
    env: str,
    wait: float,
) -> CheckRun:
    """Run the selected assets' checks on the tables ``env`` serves; recorded as a run."""
    from gristmill.runtime.run.checker import check_published  # the checks' runtime: `check` only

    planning.check_env(env)
    chosen = [graph.assets[name] for name in select(graph, selection, exclude)]
    audited = [a for a in chosen if a.checks or (selection and a.kind != "view")]
    words = planning.PlanRequest(tuple(selection), tuple(exclude), env).words()
    settings = session.project.settings.checks
    with session.lock(wait=wait), session.history() as history:
        history.runs.mark_abandoned()
        with session.engine(read_only=True) as engine:
            if engine is None:
                raise _no_data()
            run_id = history.runs.start("check", words)
            result = check_published(
                audited,
                engine=engine,
                history=history,
                run_id=run_id,
                pointers=read_pointers(engine, env),
                env=env,
                metrics=settings.metrics,
                samples=settings.samples,
            )
        history.runs.finish(run_id, "success" if result.ok else "failed", result.seconds, result.summary())
        return result
