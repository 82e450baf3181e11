"""The facade every interface calls: plan, run, query, list assets, read history.

It wires the layers together for one project folder and owns nothing but that wiring."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from gristmill._util.processes import process_alive
from gristmill._util.suggest import did_you_mean
from gristmill.config.settings import ProjectSettings
from gristmill.connectors import Source, open_source
from gristmill.connectors.base import Deserializing, Publishing, Streaming
from gristmill.engines import Engine, lake_snapshot, open_engine
from gristmill.engines.base import Relation, Transactions, require_transactions
from gristmill.errors import ConfigError, GristmillError, SelectionError
from gristmill.plan import Asset, AssetGraph, Plan, build_graph, make_plan, select
from gristmill.plan.lineage import Lineage
from gristmill.plan.planner import view_schema
from gristmill.project import Project, load_project
from gristmill.project.specs import ModelSpec
from gristmill.runtime.backfill import BackfillResult
from gristmill.runtime.build.hooks import run_hooks
from gristmill.runtime.run.checker import CheckRun, check_published
from gristmill.runtime.run.events import Listener, fan_out
from gristmill.runtime.run.executor import RunOptions, RunResult, execute
from gristmill.runtime.run.lock import run_lock
from gristmill.runtime.run.runner import Retry, Runner, retrying
from gristmill.sql.lineage import Analysis, analyse
from gristmill.sql.parse import ParsedModel
from gristmill.state import (
    CheckRecord,
    LogRecord,
    MetricRecord,
    RunHistory,
    RunRecord,
    StepRecord,
    open_history,
    read_versions,
)
from gristmill.state.lake import janitor
from gristmill.state.lake.environments import read_pointers, switch
from gristmill.state.lake.lake_state import LakeState
from gristmill.state.records import RUN_DIED

if TYPE_CHECKING:  # streaming is imported by the commands that stream, not by every run
    import pyarrow as pa

    from gristmill.runtime.streaming import Sink, StreamSettings, StreamStats
    from gristmill.runtime.unittests import UnitTestRun

_log = logging.getLogger("gristmill.alerts")


@dataclass(frozen=True)
class _Job:
    """How to run a plan, beside what it is."""

    command: str
    options: RunOptions
    listener: Listener | None
    runner: Callable[[Runner], None] | None


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


_ENV = re.compile(r"^[a-z][a-z0-9_]*$")


def _split_column(target: str, graph: AssetGraph) -> tuple[str, str | None]:
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


def in_environment(sql: str, schemas: set[str], env: str) -> str:
    """The query with each model schema pointed at the environment's views."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return sql  # the engine reports the error
    for table in tree.find_all(exp.Table):
        if table.db in schemas and not table.catalog:
            table.set("db", exp.to_identifier(view_schema(table.db, env)))
    return tree.sql(dialect="duckdb")


def _streaming(asset: Asset) -> bool:
    """A stream model, or a message-broker table (landed by a run only when selected by name)."""
    from gristmill.project.specs import STREAM_SOURCES

    return asset.kind == "stream" or (asset.source is not None and asset.source.kind in STREAM_SOURCES)


def _owner(asset: Asset) -> str | None:
    if asset.contract is not None and asset.contract.owner:
        return asset.contract.owner
    return asset.model.owner if asset.model is not None else None


def _check_env(env: str) -> None:
    if not _ENV.match(env):
        raise ConfigError(
            f'environment name "{env}" must be lower-case letters, digits and _',
            hint="e.g. dev, prod, feature_x",
        )


def python_fingerprint(asset: Asset) -> str:
    from gristmill.runtime.python_models import python_model_fingerprint

    assert asset.model is not None
    return python_model_fingerprint(asset.model)


def run_python_model(engine: Engine, model: ModelSpec, physical: Callable[[str], exp.Table]) -> exp.Query:
    from gristmill.runtime.python_models import run_python_model as run

    return run(engine, model, physical)


class CachedAnalyser:
    """Column lineage from the state store when the model and what it reads are unchanged;
    analysed (and validated) with sqlglot otherwise."""

    def __init__(self, history: RunHistory) -> None:
        self._history = history
        self._new: list[tuple[str, str, str]] = []

    def __call__(self, parsed: ParsedModel, schemas: Mapping[str, Sequence[str]]) -> Analysis:
        key = hashlib.sha256(
            json.dumps(
                [parsed.text, parsed.dialect, sorted((k, list(v)) for k, v in schemas.items())]
            ).encode()
        ).hexdigest()
        found = self._history.caches.lineage([key]).get(key)
        if found is not None:
            return Analysis.from_json(found)
        analysis = analyse(parsed, schemas)
        self._new.append((key, parsed.file, analysis.to_json()))
        return analysis

    def save(self) -> None:
        self._history.caches.save_lineage(self._new)
        self._new = []


class Workspace:
    def __init__(self, start: Path | str = ".", dbt_vars: dict[str, Any] | None = None) -> None:
        """``dbt_vars``: a dbt project's ``--vars``."""
        self.project: Project = load_project(Path(start), dbt_vars)
        state = self._path(self.project.settings.storage.state)
        summaries: dict[str, str] = {}
        if state.exists():
            history = self._history()
            try:
                summaries = history.caches.parse_summaries()
            finally:
                history.close()
        self.graph: AssetGraph = build_graph(self.project, summaries)
        self._sources: dict[str, Source] = {}
        self._abandoned: Engine | None = None
        """An engine whose session a step that would not stop still holds (see ``RunResult``)."""

    @property
    def root(self) -> Path:
        return self.project.root

    def _path(self, setting: str) -> Path:
        return self.project.path(setting)

    # -- plumbing ----------------------------------------------------------------------------------

    def source(self, name: str) -> Source:
        if name not in self._sources:
            self._sources[name] = open_source(self.project.sources[name], self.root)
        return self._sources[name]

    @contextmanager
    def _engine(self, *, read_only: bool, settings: ProjectSettings | None = None) -> Iterator[Engine | None]:
        settings = settings or self.project.settings
        storage = settings.storage
        catalog = storage.database if storage.format == "duckdb" else storage.catalog
        if read_only and "://" not in catalog and not self._path(catalog).exists():
            yield None  # nothing has run yet: an empty lake
            return
        engine = open_engine(settings, self.root, read_only=read_only)
        try:
            yield engine
        finally:
            if engine is not self._abandoned:
                engine.close()

    def _retry(self) -> Retry:
        retries = self.project.settings.run.retries
        return Retry(retries.attempts, retries.delay.total_seconds(), retries.max_delay.total_seconds())

    def _history(self) -> RunHistory:
        return open_history(self._path(self.project.settings.storage.state))

    def close(self) -> None:
        if self._abandoned is not None:
            return  # an abandoned step may still be using a source: leave them to the process's end
        for source in self._sources.values():
            source.close()
        self._sources.clear()

    # -- verbs -------------------------------------------------------------------------------------

    def plan(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        full_refresh: bool = False,
    ) -> Plan:
        history = self._history()
        try:
            lake = self._remembered(history)
            if lake is None:
                with self._engine(read_only=True) as engine:
                    lake = LakeState.read(engine) if engine else LakeState()
            return self._plan(lake, history, selection, exclude, env, full_refresh)
        finally:
            history.close()

    def _remembered(self, history: RunHistory) -> LakeState | None:
        """The lake state the last run left, if the lake has not committed since."""
        snapshot = lake_snapshot(self.project.settings, self.root)
        found = history.caches.lake_cache() if snapshot else None
        return LakeState.from_json(found[1]) if found and found[0] == snapshot else None

    def _remember(self, state: LakeState, history: RunHistory) -> None:
        """Keep the lake state read at the end of a run for the next plan; call after the engine
        closed (closing a database file may still write to it)."""
        snapshot = lake_snapshot(self.project.settings, self.root)
        if snapshot:
            history.caches.save_lake_cache(snapshot, state.to_json())

    def _plan(
        self,
        lake: LakeState,
        history: RunHistory,
        selection: Iterable[str],
        exclude: Iterable[str],
        env: str,
        full_refresh: bool,
        restate: tuple[datetime, datetime] | None = None,
        window: tuple[datetime, datetime] | None = None,
        partitions: Sequence[str] | None = None,
    ) -> Plan:
        _check_env(env)
        chosen = select(self.graph, selection, exclude)
        if not list(selection):
            # Streams run continuously under `gristmill stream`; a run builds them only when named.
            chosen = [n for n in chosen if not _streaming(self.graph.assets[n])]
        existing = lake.columns
        recorded = lake.versions
        pointers = lake.env(env)
        markers: dict[str, str | None] = {}
        source_columns: dict[str, list[str]] = {}
        for name in chosen:
            asset = self.graph.assets[name]
            if asset.source is None or asset.table is None:
                continue
            source = self.source(asset.source.name)
            markers[name] = source.change_marker(asset.table)
            # A source that cannot tell whether it changed (an API, a database) is not asked for its
            # schema while its table exists: the load's contract handles any change.
            old = recorded.get(name)
            stale = old is None or (
                markers[name] is not None and dict(old.parts.get("data") or {}).get(name) != markers[name]
            )
            # Columns are needed only to validate what reads this table in this run.
            read_here = bool(asset.checks) or any(child in chosen for child in self.graph.children[name])
            if read_here and (full_refresh or stale or name not in existing):
                read = functools.partial(source.schema, asset.table)
                source_columns[name] = retrying(read, self._retry()).names
        history.caches.save_parse_summaries(dict(self.graph.parsed_now))
        analyser = CachedAnalyser(history)
        try:
            return make_plan(
                self.graph,
                chosen,
                recorded=recorded,
                pointers=pointers,
                existing_columns=existing,
                source_columns=source_columns,
                markers=markers,
                env=env,
                baseline=lake.env("prod") if env != "prod" else None,
                full_refresh=full_refresh,
                analyser=analyser,
                python_fingerprint=python_fingerprint,
                restate=restate,
                window=window,
                partitions=partitions,
            )
        finally:
            analyser.save()

    def run(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        full_refresh: bool = False,
        wait: float = 0.0,
        listener: Listener | None = None,
        restate: tuple[datetime, datetime] | None = None,
        window: tuple[datetime, datetime] | None = None,
        partitions: Sequence[str] | None = None,
        command: str = "run",
        threads: int | None = None,
        timeout: float | None = None,
        runner: Callable[[Runner], None] | None = None,
    ) -> RunResult:
        """Plan and run the selection. ``wait``: seconds to wait for another run writing the
        project (``[run] on_conflict = "wait"`` waits without limit); ``window``: build the selected
        time-range models for their pending intervals in [start, end) only (a backfill's chunk)."""
        lock = self._path(self.project.settings.storage.state).parent / "run.lock"
        words = [*selection, *(f"--exclude {e}" for e in exclude)]
        words += [f"--env {env}"] if env != "prod" else []
        words += [f"--restate {restate[0].isoformat()}:{restate[1].isoformat()}"] if restate else []
        words += [f"--window {window[0].isoformat()}:{window[1].isoformat()}"] if window else []
        words += [f"--partition {p}" for p in partitions or ()]
        settings = self.project.settings.run
        if settings.on_conflict == "wait" and not wait:
            wait = float("inf")
        options = RunOptions(
            threads=threads or settings.threads,
            pools=self.project.settings.pools,
            retry=self._retry(),
            timeout=timeout or (settings.timeout.total_seconds() if settings.timeout else None),
            step_timeout=settings.step_timeout.total_seconds() if settings.step_timeout else None,
            grace=settings.stop_grace.total_seconds(),
            metrics=self.project.settings.checks.metrics,
            samples=self.project.settings.checks.samples,
        )
        job = _Job(command, options, listener, runner)
        with run_lock(lock, wait=wait):
            history = self._history()
            try:
                history.runs.mark_abandoned(all_running=True)
                lake = self._remembered(history)
                plan = (
                    self._plan(
                        lake, history, selection, exclude, env, full_refresh, restate, window, partitions
                    )
                    if lake
                    else None
                )
                has_run_hooks = bool(self.project.on_run_start or self.project.on_run_end)
                if (
                    lake is not None
                    and plan is not None
                    and not (plan.builds or plan.switches or plan.removed)
                    and not has_run_hooks  # dbt's on-run-start/end run on every run
                ):
                    # Nothing to do, and the lake has not changed since it was read: no engine needed.
                    return self._record(plan, history, words, None, lake.env(env), job)
                with self._engine(read_only=False) as engine:
                    assert engine is not None
                    lake = LakeState.read(engine)
                    plan = self._plan(
                        lake, history, selection, exclude, env, full_refresh, restate, window, partitions
                    )
                    result = self._record(plan, history, words, engine, lake.env(env), job)
                    if result.abandoned:
                        # A step that would not stop still holds this engine session: never touch
                        # it again (closing it could wait on the stuck statement forever).
                        self._abandoned = engine
                        return result
                    state = LakeState.read(engine)
                    stale = janitor.unused(state, superseded_only=True)
                    if stale:
                        with require_transactions(engine, "dropping superseded tables").transaction():
                            janitor.drop(engine, stale)
                        state = LakeState.read(engine)
                self._remember(state, history)
                return result
            finally:
                history.close()
                self.close()

    def _record(
        self,
        plan: Plan,
        history: RunHistory,
        words: list[str],
        engine: Engine | None,
        pointers: Mapping[str, str],
        job: _Job,
    ) -> RunResult:
        run_id = history.runs.start(job.command, " ".join(words))
        alerting = bool(self.project.settings.alerts)
        # Recoveries are judged against each asset's status before this run.
        previous = {a: status for a, (_, status, _) in history.runs.last_build().items()} if alerting else {}
        lineage = None
        if self.project.settings.lineage.openlineage:
            from gristmill.runtime.notify.openlineage import lineage_listener  # its client is slow to import

            lineage = lineage_listener(self.project.settings.lineage, self.project.settings.name, self.root)
        if engine is not None:  # models are written whole: the engine stores their schemas for that
            models = [s for s in plan.steps if s.action == "build" and s.asset.kind != "source"]
            if isinstance(engine, Transactions):
                engine.write_in_bulk({s.physical.split(".", 1)[0] for s in models})
        if engine is not None and self.project.on_run_start:
            run_hooks(engine, self.project.on_run_start, self._served(engine, plan.env), "on-run-start")
        try:
            result = execute(
                plan,
                engine=engine,
                sources=self.source,
                history=history,
                run_id=run_id,
                pointers=pointers,
                listener=fan_out(job.listener, lineage),
                python_model=run_python_model,
                options=job.options,
                command=job.command,
                runner=job.runner,
            )
        finally:
            if lineage is not None:
                lineage.close()
        history.runs.finish(run_id, result.status, result.seconds, result.summary())
        if engine is not None and self.project.on_run_end:
            run_hooks(engine, self.project.on_run_end, self._served(engine, plan.env), "on-run-end")
        if alerting:
            from gristmill.runtime.notify.alerts import Notifier, run_alerts

            alerts = run_alerts(self.project.settings.name, result, previous, plan.env)
            for problem in Notifier(self.project.settings.alerts, base=self.root).send(alerts):
                _log.warning("alert not delivered: %s", problem)
        return result

    def _served(self, engine: Engine, env: str) -> Callable[[str], exp.Table | None]:
        """Asset names in a run hook, as the environment's views of them."""

        def view(name: str) -> exp.Table | None:
            if name not in self.graph.assets:
                return None
            schema, table = name.split(".", 1)
            if self.graph.assets[name].kind == "source":
                return None  # a landed table is served where it lands
            return engine.table(Relation(view_schema(schema, env), table))

        return view

    def gc(self, *, older_than_days: int = 7) -> list[str]:
        """Drop every model table no environment serves (and no served view reads), expire lake
        snapshots older than ``older_than_days`` and delete the files only they used."""
        lock = self._path(self.project.settings.storage.state).parent / "run.lock"
        with run_lock(lock):
            with self._engine(read_only=False) as engine:
                assert engine is not None
                dropped = janitor.unused(LakeState.read(engine), superseded_only=False)
                with require_transactions(engine, "dropping unused tables").transaction():
                    janitor.drop(engine, dropped)
                janitor.expire_files(engine, older_than_days)
                state = LakeState.read(engine)
            history = self._history()
            try:
                self._remember(state, history)
            finally:
                history.close()
            return dropped

    def promote(self, source_env: str, target_env: str = "prod") -> dict[str, str]:
        """Point ``target_env`` at the tables ``source_env`` serves: nothing is rebuilt. Returns the
        models whose table changed."""
        _check_env(source_env)
        _check_env(target_env)
        lock = self._path(self.project.settings.storage.state).parent / "run.lock"
        with run_lock(lock):
            history = self._history()
            try:
                with self._engine(read_only=False) as engine:
                    assert engine is not None
                    wanted = read_pointers(engine, source_env)
                    if not wanted:
                        raise GristmillError(
                            f'environment "{source_env}" has no models',
                            hint=f"build it first: gristmill run --env {source_env}",
                        )
                    current = read_pointers(engine, target_env)
                    changed = {a: p for a, p in wanted.items() if current.get(a) != p}
                    run_id = history.runs.start("promote", f"{source_env} -> {target_env}")
                    with require_transactions(engine, "switching an environment's views").transaction():
                        switch(engine, target_env, changed, [], run_id)
                    history.runs.finish(run_id, "success", 0.0, {"switched": len(changed)})
                    state = LakeState.read(engine)
                self._remember(state, history)
            finally:
                history.close()
            return changed

    def check(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        wait: float = 0.0,
    ) -> CheckRun:
        """Run the selected assets' checks on the tables ``env`` serves, measure their metrics and
        judge their anomalies; nothing is built. Recorded as a run of its own."""
        _check_env(env)
        chosen = [self.graph.assets[name] for name in select(self.graph, selection, exclude)]
        audited = [a for a in chosen if a.checks or (selection and a.kind != "view")]
        words = [*selection, *(f"--exclude {e}" for e in exclude)] + (
            [f"--env {env}"] if env != "prod" else []
        )
        lock = self._path(self.project.settings.storage.state).parent / "run.lock"
        with run_lock(lock, wait=wait):
            history = self._history()
            try:
                history.runs.mark_abandoned()
                with self._engine(read_only=True) as engine:
                    if engine is None:
                        raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
                    run_id = history.runs.start("check", " ".join(words))
                    result = check_published(
                        audited,
                        engine=engine,
                        history=history,
                        run_id=run_id,
                        pointers=read_pointers(engine, env),
                        env=env,
                        metrics=self.project.settings.checks.metrics,
                        samples=self.project.settings.checks.samples,
                    )
                history.runs.finish(
                    run_id, "success" if result.ok else "failed", result.seconds, result.summary()
                )
                return result
            finally:
                history.close()

    def quality_history(
        self, assets: Sequence[str], *, env: str = "prod", runs: int = 30
    ) -> tuple[list[CheckRecord], list[MetricRecord]]:
        """Check results and metrics of these assets over their latest ``runs`` runs."""
        history = self._history()
        try:
            return history.quality.check_results(
                list(assets), env=env, runs=runs
            ), history.quality.metric_series(list(assets), env=env, runs=runs)
        finally:
            history.close()

    def query(self, sql: str, env: str = "prod") -> pa.Table:
        _check_env(env)
        with self._engine(read_only=True) as engine:
            if engine is None:
                raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
            if env != "prod":
                schemas = {m.split(".", 1)[0] for m in self.project.models}
                sql = in_environment(sql, schemas, env)
            return engine.query(sql)

    def lineage(self, target: str, env: str = "prod") -> Lineage:
        """Column lineage of an asset or one of its columns, upstream and downstream."""
        asset, column = _split_column(target, self.graph)
        plan = self.plan(env=env)
        edges: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        columns: dict[str, tuple[str, ...]] = {}
        for step in plan.steps:
            if step.columns is not None:
                columns[step.name] = step.columns
            if step.analysis is not None and step.analysis.exact:
                for name, trace in step.analysis.traces.items():
                    if name:
                        edges[(step.name, name)] = trace.reads
        return Lineage.build(asset, column, edges, columns, self.graph)

    def assets(self, selection: Sequence[str] = (), env: str = "prod") -> list[AssetInfo]:
        history = self._history()
        try:
            last = history.runs.last_build()
            # The last run's copy of the lake state answers while the lake has not committed
            # since: no engine, no catalog attached (~0.5 CPU-s saved).
            lake = self._remembered(history)
        finally:
            history.close()
        if lake is not None:
            recorded, pointers = lake.versions, lake.env(env)
        else:
            with self._engine(read_only=True) as engine:
                recorded = read_versions(engine) if engine else {}
                pointers = read_pointers(engine, env) if engine else {}
        infos = []
        for name in select(self.graph, selection, compiled=False):  # listing needs no SQL
            asset, version = self.graph.assets[name], recorded.get(pointers.get(name, name))
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

    def runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]:
        history = self._history()
        try:
            return history.runs.recent(limit, status=status, command=command, asset=asset, since=since)
        finally:
            history.close()

    def logs(self, run_id: int, asset: str | None = None, *, grep: str | None = None) -> list[LogRecord]:
        """What the steps of a run logged (one step's with ``asset``), optionally only matching lines."""
        history = self._history()
        try:
            if history.runs.get(run_id) is None:
                raise GristmillError(
                    f"no run {run_id} in this project's history", hint="`gristmill runs` lists the runs"
                )
            if asset is not None and asset not in self.graph.assets:
                asset = _split_column(asset, self.graph)[0]
            return history.runs.step_logs(run_id, asset, grep=grep)
        finally:
            history.close()

    def cancel(self, run_id: int, *, wait: float = 30.0) -> RunRecord:
        """Ask a running run to stop (what it is building rolls back) and wait for it to end."""
        history = self._history()
        try:
            found = history.runs.get(run_id)
            if found is None:
                raise GristmillError(
                    f"no run {run_id} in this project's history", hint="`gristmill runs` lists the runs"
                )
            if found.status != "running":
                raise GristmillError(f"run {run_id} is not running (it is {found.status})")
            # Through the state store, not a signal: a run started in the background by a script
            # ignores SIGINT, and a signal reaches only the main thread of its process.
            history.runs.request_cancel(run_id, f"cancelled by `gristmill cancel {run_id}`")
            pid = history.runs.pid(run_id)
            if pid and not process_alive(pid):
                history.runs.mark_abandoned()
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                now = history.runs.get(run_id)
                if now is not None and now.status != "running":
                    return now
                time.sleep(0.1)
            raise GristmillError(
                f"run {run_id} (pid {pid}) has not stopped after {wait:g} s",
                hint="it was asked to stop and will (a step that ignores the stop is abandoned after "
                "[run] stop_grace); wait longer with --wait, or check the process",
            )
        finally:
            history.close()

    def failed_steps(self, run_id: int) -> list[str]:
        """The assets a run failed, did not run because of a failure, or cancelled. Of a run whose
        process died, every asset it recorded: a step it recorded as succeeded may have waited
        for a commit that never came (steps share commits, runtime/commit_groups.py); the planner
        skips again what did commit, since its version is in the lake."""
        steps = self.steps(run_id)
        died = self._run_died(run_id)
        final: dict[str, StepRecord] = {}
        for step in steps:
            if step.asset not in final or step.attempt >= final[step.asset].attempt:
                final[step.asset] = step
        return [
            a
            for a, s in final.items()
            if (died or s.status in ("failed", "upstream_failed", "cancelled")) and a in self.graph.assets
        ]

    def _run_died(self, run_id: int) -> bool:
        history = self._history()
        try:
            history.runs.mark_abandoned()
            record = history.runs.get(run_id)
        finally:
            history.close()
        return record is not None and record.status == "failed" and record.summary.get("error") == RUN_DIED

    def steps(self, run_id: int) -> list[StepRecord]:
        history = self._history()
        try:
            found = history.runs.steps(run_id)
        finally:
            history.close()
        if not found:
            raise GristmillError(
                f"no run {run_id} in this project's history", hint="`gristmill history` lists the runs"
            )
        return found

    def test(
        self, names: Sequence[str] = (), selection: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> UnitTestRun:
        """Run the unit tests in tests/*.yml (by name, and/or of the selected models) in memory."""
        models = set(select(self.graph, selection, exclude)) if selection or exclude else None
        from gristmill.runtime.unittests import run_unit_tests, select_tests  # `gristmill test` only

        return run_unit_tests(self.project, select_tests(self.project, names, models))

    # -- streams ----------------------------------------------------------------------------------

    def stream(
        self,
        model: str,
        *,
        env: str = "prod",
        settings: StreamSettings | None = None,
        stop: threading.Event | None = None,
        on_commit: Callable[[StreamStats], None] | None = None,
    ) -> StreamStats:
        """Run a stream model until ``stop`` is set (or, with ``settings.stop_when_idle``, the
        stream has been quiet that long): micro-batches from its broker through its SQL into the
        lake, exactly once. Its table lives under its own name per version of the model, so a
        changed model starts over from the first retained message; the environment's view points
        at it from the start."""
        from gristmill.plan.planner import PHYSICAL_PREFIX, _definition
        from gristmill.runtime.streaming import StreamLoop, StreamSettings

        _check_env(env)
        names = select(self.graph, [model])
        streams = [n for n in names if self.graph.assets[n].kind == "stream"]
        if len(streams) != 1:
            raise SelectionError(
                f'"{model}" is not a stream model'
                if not streams
                else f'"{model}" names several stream models',
                hint="a stream model has `-- kind: stream` in its header; `gristmill ls` lists the assets",
            )
        asset = self.graph.assets[streams[0]]
        assert asset.stream_input is not None and asset.model is not None
        source_asset = self.graph.assets[asset.stream_input]
        assert source_asset.source is not None and source_asset.table is not None
        source = self.source(source_asset.source.name)
        if not isinstance(source, Streaming):
            raise ConfigError(
                f"source kind {source_asset.source.kind} cannot be streamed", location=source_asset.file
            )
        from gristmill.connectors.streams.config import StreamTableOptions
        from gristmill.connectors.streams.feed import OptionedFeed

        feed = source.feed(source_asset.table)
        # The connector knows its table options (defaults, a list of topics landing raw bytes).
        own = feed.table_options if isinstance(feed, OptionedFeed) else None
        options = own or StreamTableOptions.model_validate(
            {k: v for k, v in source_asset.table.options.items() if k in StreamTableOptions.model_fields}
        )
        deserialize = source.deserializer(source_asset.table) if isinstance(source, Deserializing) else None
        schema, name = asset.name.split(".", 1)
        version = hashlib.sha256(_definition(asset, None).encode()).hexdigest()[:12]
        target = Relation(f"{PHYSICAL_PREFIX}{schema}", f"{name}__live_{version}")
        project_settings = self.project.settings
        if project_settings.engine.threads is None:
            # Streams scale by processes sharing the partitions; within one, a batch's statements
            # are too small for a second thread to pay for its hand-offs (~7% more CPU, measured).
            one_thread = project_settings.engine.model_copy(update={"threads": 1})
            project_settings = project_settings.model_copy(update={"engine": one_thread})
        with self._engine(read_only=False, settings=project_settings) as engine:
            assert engine is not None
            lake = LakeState.read(engine)
            pointers = lake.env(env)
            physical: dict[str, exp.Table] = {}
            for upstream in asset.upstream:
                if upstream == asset.stream_input:
                    continue
                if upstream not in pointers:
                    raise SelectionError(
                        f"{asset.name} joins {upstream}, which has never been built in {env}",
                        hint=f"build it first: gristmill run -s {upstream}",
                    )
                if self.graph.assets[upstream].kind == "source":
                    physical[upstream] = engine.table(Relation.of(pointers[upstream]))
                else:
                    # The environment's view, not the table it shows now: a rebuilt model is a
                    # new table, which the stream then joins from its next batch on.
                    schema_of, name_of = upstream.split(".", 1)
                    physical[upstream] = engine.table(Relation(view_schema(schema_of, env), name_of))
            loop = StreamLoop(
                engine,
                asset,
                feed,
                options,
                target,
                physical,
                settings or StreamSettings(),
                deserialize,
                on_commit,
                self._sink(asset),
            )
            loop.prepare(env)
            try:
                return loop.run(stop or threading.Event())
            finally:
                self.close()

    def _sink(self, asset: Asset) -> Sink | None:
        """The Kafka producer a stream model's ``publish: <source>.<topic>`` names."""
        if asset.model is None or asset.model.publish is None:
            return None
        name, topic = asset.model.publish.split(".", 1)
        spec = self.project.sources.get(name)
        if spec is None or spec.kind != "kafka":
            raise ConfigError(
                f'publish: "{name}" is not a kafka source',
                location=asset.model.file,
                hint=did_you_mean(name, [n for n, s in self.project.sources.items() if s.kind == "kafka"])
                or "publish: <kafka source>.<topic>, e.g. shop.alerts for sources/shop.yml",
            )
        source = self.source(name)
        if not isinstance(source, Publishing):
            raise ConfigError(f'publish: source "{name}" cannot be published to', location=asset.model.file)
        sink: Sink = source.sink(topic)
        return sink

    # -- backfills ---------------------------------------------------------------------------------

    def backfill(
        self,
        selection: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        reprocess: str = "missing",
        chunk: int | None = None,
        env: str = "prod",
        resume: int | None = None,
        wait: float = 0.0,
        listener: Listener | None = None,
        partitions: Sequence[str] | None = None,
    ) -> BackfillResult:
        """Build the selected time-range models for the intervals starting in [start, end), a
        chunk of intervals per run, and keep each interval's outcome in the history: a backfill
        that failed, was cancelled or died is resumed (``resume``: its id) where it stopped.

        ``reprocess``: ``missing`` builds the intervals the lake has not recorded (the others are
        listed as skipped), ``failed`` also those whose last backfill failed, ``all`` every one
        again. ``chunk``: intervals per run (default 24 hours, 7 days or 1 month; a resume keeps
        the backfill's): a run commits its chunk at once, so a failure costs one chunk and a crash
        loses none that finished.
        Models split by declared values (``partition_by``) are backfilled a chunk of values per
        run (default one), all of them or ``partitions``; they need no range.
        Selected assets the partitioned models read run with each chunk (skipped while unchanged),
        so the chunks are planned as that selection is; the other selected assets run once, after
        every partition succeeded."""
        from contextlib import ExitStack
        from datetime import UTC

        from gristmill.engines.base import Relation
        from gristmill.errors import ConcurrentRunError
        from gristmill.plan.intervals import Span, contiguous, floor, parse_moment, shift, utc
        from gristmill.plan.planner import Step, statically_partitioned, time_partitioned
        from gristmill.state.lake.intervals import read_intervals
        from gristmill.state.lake.partitions import read_partitions

        if reprocess not in ("missing", "failed", "all"):
            raise ConfigError(
                f'reprocess "{reprocess}" is not one of missing, failed, all',
                hint="missing: intervals not built yet; failed: those too and the ones that failed "
                "before; all: every interval again",
            )
        if chunk is not None and chunk < 1:
            raise ConfigError(f"chunk {chunk}: a run builds at least one interval", hint="e.g. --chunk 7")
        history = self._history()
        try:
            previous = None
            if resume is not None:
                listed = history.backfills.recent(resume, 1)
                if not listed:
                    raise GristmillError(
                        f"no backfill {resume} in this project's history",
                        hint="`gristmill backfills` lists them",
                    )
                previous = listed[0]
                words = previous.selection.split()
                env = words[words.index("--env") + 1] if "--env" in words else "prod"
                if chunk is None and "--chunk" in words:
                    chunk = int(words[words.index("--chunk") + 1])
                values = [words[i + 1] for i, word in enumerate(words) if word == "--partition"]
                partitions = values or None
                selection = [
                    word
                    for i, word in enumerate(words)
                    if not word.startswith("--") and not (i and words[i - 1].startswith("--"))
                ]
                if previous.start and previous.end:
                    start, end = parse_moment(previous.start), parse_moment(previous.end)
            chosen = select(self.graph, selection)
            timed = any(time_partitioned(self.graph.assets[name]) for name in chosen)
            if not timed and not any(statically_partitioned(self.graph.assets[n]) for n in chosen):
                raise ConfigError(
                    f"nothing to backfill: the selection ({', '.join(chosen) or 'no assets'}) has no "
                    "partitioned model",
                    hint="a backfill builds incremental models split by time (`time:` and `interval:` "
                    "in the header) or by declared values (`partition_by:` and `partitions:`)",
                )
            if timed and (start is None or end is None):
                raise ConfigError(
                    "a backfill of models built by time interval needs the range of intervals to build",
                    hint="e.g. --from 2024-01-01 --to 2024-03-31",
                )
            low, high = (utc(start), utc(end)) if start and end else (None, None)
            if low is not None and high is not None and high <= low:
                raise ConfigError(
                    f"backfill range: the end ({high.isoformat()}) must be after the start "
                    f"({low.isoformat()})"
                )
            plan = self.plan(selection, env=env)
            steps = [s for s in plan.steps if time_partitioned(s.asset) or statically_partitioned(s.asset)]
            now = datetime.now(UTC)
            units = {
                s.name: "value" if statically_partitioned(s.asset) else s.asset.model.interval
                for s in steps
                if s.asset.model is not None
            }

            def intervals(step: Step) -> dict[str, Span | None]:
                """The asset's partitions: its declared values (those asked for), or its intervals
                starting in the range, from its ``start`` on, and over now."""
                model = step.asset.model
                assert model is not None
                if statically_partitioned(step.asset):
                    declared = [model.partition_key(v) for v in model.partitions]
                    unknown = [p for p in partitions or () if p not in declared]
                    if unknown:
                        raise ConfigError(
                            f'{step.name} has no partition "{unknown[0]}"',
                            hint="its partitions: " + ", ".join(declared),
                        )
                    return {k: None for k in declared if partitions is None or k in partitions}
                assert low is not None and high is not None
                unit = model.interval
                at = floor(low, unit)
                at = at if at >= low else shift(at, unit)
                if model.start:
                    try:
                        at = max(at, floor(parse_moment(model.start), unit))
                    except ValueError as err:
                        raise ConfigError(f"start: {err}", location=model.file) from None
                found: dict[str, Span | None] = {}
                while at < high and shift(at, unit) <= now:
                    found[at.isoformat()] = (at, shift(at, unit))
                    at = shift(at, unit)
                return found

            keys = {s.name: intervals(s) for s in steps}
            built: dict[str, set[str]] = {s.name: set() for s in steps}
            with self._engine(read_only=True) as engine:
                for s in steps:
                    if engine is None or not engine.exists(Relation.of(s.physical)):
                        continue
                    if statically_partitioned(s.asset):
                        built[s.name] = set(read_partitions(engine, s.physical))
                    else:
                        built[s.name] = {lo.isoformat() for lo, _ in read_intervals(engine, s.physical)}
            status: dict[tuple[str, str], str] = {}
            if previous is None:
                failed_before: set[tuple[str, str]] = set()
                if reprocess == "failed":
                    latest: dict[tuple[str, str], str] = {}
                    for old in sorted(history.backfills.recent(limit=1_000_000), key=lambda r: r.backfill_id):
                        for part in history.backfills.partitions(old.backfill_id):
                            if part.status in ("success", "failed"):
                                latest[(part.asset, part.partition)] = part.status
                    failed_before = {key for key, last in latest.items() if last == "failed"}
                for name, own in keys.items():
                    for key in own:
                        again = reprocess == "all" or key not in built[name] or (name, key) in failed_before
                        status[(name, key)] = "pending" if again else "skipped"
                if not status:
                    assert low is not None and high is not None
                    raise ConfigError(
                        f"nothing to backfill: no interval of {', '.join(keys)} starts between "
                        f"{low.isoformat()} and {high.isoformat()} and is over",
                        hint="intervals begin at a model's `start:`; the one still running is left to runs",
                    )
                words = [*selection]
                words += [w for p in partitions or () for w in ("--partition", p)]
                words += ["--reprocess", reprocess] if reprocess != "missing" else []
                words += ["--chunk", str(chunk)] if chunk else []
                words += ["--env", env] if env != "prod" else []
                backfill_id = history.backfills.start(
                    " ".join(words),
                    low.isoformat() if low else "",
                    high.isoformat() if high else "",
                    list(status),
                )
                skipped: list[tuple[str, str, str, int | None, str | None]] = [
                    (a, p, "skipped", None, None) for (a, p), s in status.items() if s == "skipped"
                ]
                if skipped:
                    history.backfills.set_partitions(backfill_id, skipped)
            else:
                backfill_id = previous.backfill_id
            # One process per backfill: its lock file is released by the OS if the process dies,
            # which is how a listing tells a running backfill from an interrupted one.
            lock = (
                self._path(self.project.settings.storage.state).parent / "backfills" / f"{backfill_id}.lock"
            )
            held = ExitStack()
            try:
                held.enter_context(run_lock(lock))
            except ConcurrentRunError:
                raise GristmillError(
                    f"backfill {backfill_id} is running in another process",
                    hint="wait for it to end, or stop it (Ctrl-C) and resume it then",
                ) from None
            runs: list[RunResult] = []
            with held:
                try:
                    if previous is not None:
                        # What is left: intervals pending or failed, and any the lake no longer
                        # has (a changed model builds a new version, empty until filled).
                        again_rows: list[tuple[str, str, str, int | None, str | None]] = []
                        for part in history.backfills.partitions(backfill_id):
                            if part.partition not in keys.get(part.asset, {}):
                                continue
                            state = part.status
                            if state in ("pending", "failed") or part.partition not in built[part.asset]:
                                state = "pending"
                                if part.status != "pending":
                                    again_rows.append((part.asset, part.partition, state, None, None))
                            status[(part.asset, part.partition)] = state
                        if again_rows:
                            history.backfills.set_partitions(backfill_id, again_rows)
                        history.backfills.finish(backfill_id, "running")
                    restating = reprocess != "missing" or previous is not None
                    names = list(units)
                    ancestors: dict[str, set[str]] = {}

                    def upstream_of(name: str) -> set[str]:
                        if name not in ancestors:
                            found: set[str] = set()
                            for parent in self.graph.assets[name].upstream:
                                found |= {parent} | upstream_of(parent)
                            ancestors[name] = found
                        return ancestors[name]

                    others = [s.name for s in plan.steps if s.name not in units]
                    feeding = [n for n in others if any(n in upstream_of(p) for p in names)]
                    last = [n for n in others if n not in feeding]
                    # Another run (a schedule) may take the project between two chunks: wait for it
                    # rather than abandon the backfill.
                    between = max(wait, 600.0)

                    stops: list[str] = []

                    def watch(coordinator: Runner) -> None:
                        """Note a cancellation (Ctrl-C, `gristmill cancel`): a run whose steps end
                        well before they notice it still succeeds, yet the backfill stops after it."""
                        cancel = coordinator.cancel

                        def noted(reason: str = "cancelled") -> None:
                            stops.append(reason)
                            cancel(reason)

                        coordinator.cancel = noted  # type: ignore[method-assign]

                    def run(
                        chosen: list[str], window: Span | None = None, values: list[str] | None = None
                    ) -> RunResult:
                        result = self.run(
                            chosen,
                            env=env,
                            wait=between if runs else wait,
                            listener=listener,
                            window=window,
                            restate=window if window is not None and restating else None,
                            partitions=values,
                            command=f"backfill {backfill_id}",
                            runner=watch,
                        )
                        runs.append(result)
                        return result

                    def overlaps(asset: str, key: str, other: str, other_key: str) -> bool:
                        """Whether ``asset``'s partition ``key`` reads ``other``'s ``other_key``:
                        overlapping intervals, the same declared value, or (partitioned two ways)
                        any."""
                        mine, theirs = keys[asset][key], keys[other][other_key]
                        if mine is not None and theirs is not None:
                            return mine[0] < theirs[1] and theirs[0] < mine[1]
                        return (mine is None) != (theirs is None) or key == other_key

                    def pending(name: str) -> list[str]:
                        """The asset's pending partitions; those reading a partition that failed
                        upstream in this backfill fail without running."""
                        broken = [
                            (asset, key)
                            for (asset, key), state in status.items()
                            if state == "failed" and asset in upstream_of(name) and key in keys.get(asset, {})
                        ]
                        todo: list[str] = []
                        blocked: list[tuple[str, str, str, int | None, str | None]] = []
                        for key in keys[name]:
                            if status.get((name, key)) != "pending":
                                continue
                            cause = next((a for a, k in broken if overlaps(name, key, a, k)), None)
                            if cause is None:
                                todo.append(key)
                            else:
                                status[(name, key)] = "failed"
                                blocked.append((name, key, "failed", None, f"not run: {cause} failed here"))
                        if blocked:
                            history.backfills.set_partitions(backfill_id, blocked)
                        return todo

                    def chunks(name: str, todo: list[str]) -> list[list[str]]:
                        """Runs' worth of partitions: declared values ``chunk`` (default one) at a
                        time; intervals ``chunk`` at a time within each contiguous stretch."""
                        unit = units[name]
                        size = chunk or {"hour": 24, "day": 7, "month": 1, "value": 1}[unit]
                        if unit == "value":
                            return [todo[k : k + size] for k in range(0, len(todo), size)]
                        spans = [span for key in todo if (span := keys[name][key]) is not None]
                        pieces: list[list[str]] = []
                        for lo, hi in contiguous(spans):
                            stretch = [s[0].isoformat() for s in spans if lo <= s[0] < hi]
                            pieces += [stretch[k : k + size] for k in range(0, len(stretch), size)]
                        return pieces

                    outcome = "success"
                    started = any(state == "pending" for state in status.values())
                    queue = names
                    while queue and outcome == "success":
                        name = queue.pop(0)
                        todo = pending(name)
                        # Neighbours of one unit with the same partitions to do share each chunk's run.
                        group = [name]
                        while queue and units[queue[0]] == units[name] and pending(queue[0]) == todo:
                            group.append(queue.pop(0))
                        upstream = [n for n in feeding if any(n in upstream_of(g) for g in group)]
                        for piece in chunks(name, todo):
                            if units[name] == "value":
                                result = run([*upstream, *group], values=piece)
                            else:
                                opening, closing = keys[name][piece[0]], keys[name][piece[-1]]
                                assert opening is not None and closing is not None
                                result = run([*upstream, *group], (opening[0], closing[1]))
                            by_asset = {s.asset: s for s in result.steps}
                            rows: list[tuple[str, str, str, int | None, str | None]] = []
                            for asset in group:
                                step = by_asset.get(asset)
                                error: str | None = None
                                if step is not None and step.status == "cancelled":
                                    state = "pending"  # rolled back: left for the resume
                                elif step is not None and step.status in ("success", "switched", "skipped"):
                                    state = "success"
                                else:
                                    state = "failed"
                                    error = (step.error or step.reason) if step is not None else "not run"
                                for key in piece:
                                    status[(asset, key)] = state
                                    rows.append((asset, key, state, result.run_id, error))
                            history.backfills.set_partitions(backfill_id, rows)
                            unloaded = [
                                n
                                for n in upstream
                                if by_asset.get(n) is None
                                or by_asset[n].status not in ("success", "switched", "skipped")
                            ]
                            if result.status == "cancelled" or stops:
                                outcome = "cancelled"
                                break
                            if unloaded:  # what the models read did not build: later chunks would fail alike
                                outcome = "failed"
                                break
                    if outcome == "success" and any(state == "failed" for state in status.values()):
                        outcome = "failed"
                    if outcome == "success" and last and (started or previous is not None):
                        final = run(last)
                        outcome = "cancelled" if stops else final.status
                    history.backfills.finish(backfill_id, outcome)
                    if outcome == "success":
                        lock.unlink(missing_ok=True)
                except BaseException as err:
                    history.backfills.finish(backfill_id, "cancelled")
                    # DuckDB reports Ctrl-C during a call (opening the lake) as an error of its own.
                    cause: BaseException | None = err
                    for _ in range(8):
                        if cause is None or isinstance(cause, KeyboardInterrupt):
                            break
                        cause = cause.__cause__ or cause.__context__
                    if isinstance(cause, KeyboardInterrupt) and cause is not err:
                        raise KeyboardInterrupt from err
                    raise
            record = history.backfills.recent(backfill_id, 1)[0]
            return BackfillResult(record, history.backfills.partitions(backfill_id), runs)
        finally:
            history.close()

    def backfills(self, backfill_id: int | None = None, *, limit: int = 20) -> list[BackfillResult]:
        """Recent backfills, newest first, or one with its partitions. A backfill whose process died
        shows as interrupted (it is resumed like a cancelled one)."""
        from dataclasses import replace

        from gristmill.errors import ConcurrentRunError

        folder = self._path(self.project.settings.storage.state).parent / "backfills"
        history = self._history()
        try:
            found = history.backfills.recent(backfill_id, limit)
            if backfill_id is not None and not found:
                raise GristmillError(
                    f"no backfill {backfill_id} in this project's history",
                    hint="`gristmill backfills` lists them",
                )
            results: list[BackfillResult] = []
            for record in found:
                if record.status == "running":
                    lock, alive = folder / f"{record.backfill_id}.lock", False
                    if lock.exists():
                        try:
                            with run_lock(lock):
                                pass
                        except ConcurrentRunError:
                            alive = True
                    if not alive:
                        record = replace(record, status="interrupted")
                partitions = (
                    history.backfills.partitions(record.backfill_id) if backfill_id is not None else []
                )
                results.append(BackfillResult(record, partitions))
            return results
        finally:
            history.close()
