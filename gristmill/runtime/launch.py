"""A run of the project, end to end: take the run lock, plan once, execute, record the run, let
the alerts and hooks see it, drop what it superseded, and remember the lake state it left.

The lake state is read at most once before the plan (not at all while the history's copy is
current) and once after the run, for the next plan."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from sqlglot import exp

from gristmill.engines import Engine
from gristmill.engines.base import Relation, Transactions, require_transactions
from gristmill.plan import AssetGraph, Plan
from gristmill.plan.planner import view_schema
from gristmill.runtime import planning
from gristmill.runtime.build.hooks import run_hooks
from gristmill.runtime.run.events import Listener, fan_out
from gristmill.runtime.run.executor import RunOptions, RunResult, execute
from gristmill.runtime.run.runner import Runner
from gristmill.runtime.session import Session
from gristmill.state import RunHistory
from gristmill.state.lake import janitor
from gristmill.state.lake.lake_state import LakeState

_log = logging.getLogger("gristmill.alerts")


@dataclass(frozen=True)
class Job:
    """How to run a plan, beside what it is."""

    command: str = "run"
    listener: Listener | None = None
    runner: Callable[[Runner], None] | None = None
    threads: int | None = None
    timeout: float | None = None


def options(session: Session, job: Job) -> RunOptions:
    """``[run]`` and ``[checks]`` in gristmill.toml, with the job's own threads and timeout."""
    settings = session.project.settings
    run = settings.run
    return RunOptions(
        threads=job.threads or run.threads,
        pools=settings.pools,
        retry=session.retry(),
        timeout=job.timeout or (run.timeout.total_seconds() if run.timeout else None),
        step_timeout=run.step_timeout.total_seconds() if run.step_timeout else None,
        grace=run.stop_grace.total_seconds(),
        metrics=settings.checks.metrics,
        samples=settings.checks.samples,
    )


def run(
    session: Session, graph: AssetGraph, request: planning.PlanRequest, job: Job, wait: float
) -> RunResult:
    """Plan and run ``request``. ``wait``: seconds to wait for another run writing the project."""
    if session.project.settings.run.on_conflict == "wait" and not wait:
        wait = float("inf")
    with session.lock(wait=wait), session.history() as history:
        try:
            history.runs.mark_abandoned(all_running=True)
            at = planning.snapshot(session)
            lake = planning.remembered(session, history, at)
            plan = planning.make(session, graph, lake, history, request) if lake else None
            hooks = bool(session.project.on_run_start or session.project.on_run_end)
            if lake and plan and not (plan.builds or plan.switches or plan.removed or hooks):
                # Nothing to do (dbt's on-run-start/end run on every run), and the lake has not
                # changed since it was read: no engine needed.
                return _record(
                    session, graph, plan, history, None, lake.env(request.env), job, request.words()
                )
            with session.engine(read_only=False) as engine:
                assert engine is not None
                if lake is None or plan is None or planning.snapshot(session) != at:
                    lake = LakeState.read(engine)
                    plan = planning.make(session, graph, lake, history, request)
                result = _record(
                    session, graph, plan, history, engine, lake.env(request.env), job, request.words()
                )
                if result.abandoned:
                    # A step that would not stop still holds this engine session: never touch
                    # it again (closing it could wait on the stuck statement forever).
                    session.abandoned = engine
                    return result
                state = _tidy(engine)
            planning.remember(session, state, history)
            return result
        finally:
            session.close()


def _tidy(engine: Engine) -> LakeState:
    """Drop the tables this run superseded; the lake state as it is then."""
    state = LakeState.read(engine)
    stale = janitor.unused(state, superseded_only=True)
    if not stale:
        return state
    with require_transactions(engine, "dropping superseded tables").transaction():
        janitor.drop(engine, stale)
    gone = set(stale) | {str(Relation.of(p)) for p in stale}
    return replace(
        state,
        versions={k: v for k, v in state.versions.items() if k not in gone},
        columns={k: v for k, v in state.columns.items() if k not in gone},
    )


def _record(
    session: Session,
    graph: AssetGraph,
    plan: Plan,
    history: RunHistory,
    engine: Engine | None,
    pointers: Mapping[str, str],
    job: Job,
    words: str,
) -> RunResult:
    project = session.project
    settings = project.settings
    run_id = history.runs.start(job.command, words)
    alerting = bool(settings.alerts)
    # Recoveries are judged against each asset's status before this run.
    previous = {a: status for a, (_, status, _) in history.runs.last_build().items()} if alerting else {}
    lineage = None
    if settings.lineage.openlineage:
        from gristmill.runtime.notify.openlineage import lineage_listener  # its client is slow to import

        lineage = lineage_listener(settings.lineage, settings.name, session.root)
    if isinstance(engine, Transactions):  # models are written whole: stored the way that is cheapest
        models = [s for s in plan.steps if s.action == "build" and s.asset.kind != "source"]
        engine.write_in_bulk({s.physical.split(".", 1)[0] for s in models})
    if engine is not None and project.on_run_start:
        run_hooks(engine, project.on_run_start, _served(graph, engine, plan.env), "on-run-start")
    try:
        result = execute(
            plan,
            engine=engine,
            sources=session.source,
            history=history,
            run_id=run_id,
            pointers=pointers,
            listener=fan_out(job.listener, lineage),
            python_model=planning.run_python_model,
            options=options(session, job),
            command=job.command,
            runner=job.runner,
        )
    finally:
        if lineage is not None:
            lineage.close()
    history.runs.finish(run_id, result.status, result.seconds, result.summary())
    if engine is not None and project.on_run_end:
        run_hooks(engine, project.on_run_end, _served(graph, engine, plan.env), "on-run-end")
    if alerting:
        from gristmill.runtime.notify.alerts import Notifier, run_alerts

        alerts = run_alerts(settings.name, result, previous, plan.env)
        for problem in Notifier(settings.alerts, base=session.root).send(alerts):
            _log.warning("alert not delivered: %s", problem)
    return result


def _served(graph: AssetGraph, engine: Engine, env: str) -> Callable[[str], exp.Table | None]:
    """Asset names in a run hook, as the environment's views of them."""

    def view(name: str) -> exp.Table | None:
        if name not in graph.assets:
            return None
        schema, table = name.split(".", 1)
        if graph.assets[name].kind == "source":
            return None  # a landed table is served where it lands
        return engine.table(Relation(view_schema(schema, env), table))

    return view
