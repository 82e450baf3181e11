"""The facade every interface calls: plan, run, query, list assets, read history.

It wires the layers together for one project folder and owns nothing but that wiring."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from gristmill.connectors import Source, open_source
from gristmill.engines import Engine, open_engine
from gristmill.errors import GristmillError
from gristmill.plan import AssetGraph, Plan, build_graph, make_plan, select
from gristmill.project import Project, load_project
from gristmill.runtime import RunResult, execute, run_lock
from gristmill.runtime.events import Listener
from gristmill.state import RunHistory, RunRecord, StepRecord, open_history, read_versions


@dataclass(frozen=True)
class AssetInfo:
    name: str
    kind: str
    rows: int | None
    built_at: str | None
    last_status: str | None
    last_run: int | None
    upstream: tuple[str, ...]


class Workspace:
    def __init__(self, start: Path | str = ".") -> None:
        self.project: Project = load_project(Path(start))
        self.graph: AssetGraph = build_graph(self.project)
        self._sources: dict[str, Source] = {}

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
    def _engine(self, *, read_only: bool) -> Iterator[Engine | None]:
        catalog = self.project.settings.storage.catalog
        if read_only and "://" not in catalog and not self._path(catalog).exists():
            yield None  # nothing has run yet: an empty lake
            return
        engine = open_engine(self.project.settings, self.root, read_only=read_only)
        try:
            yield engine
        finally:
            engine.close()

    def _history(self) -> RunHistory:
        return open_history(self._path(self.project.settings.storage.state))

    def close(self) -> None:
        for source in self._sources.values():
            source.close()
        self._sources.clear()

    # -- verbs -------------------------------------------------------------------------------------

    def plan(
        self, selection: Sequence[str] = (), exclude: Sequence[str] = (), *, full_refresh: bool = False
    ) -> Plan:
        with self._engine(read_only=True) as engine:
            return self._plan(engine, selection, exclude, full_refresh)

    def _plan(
        self, engine: Engine | None, selection: Iterable[str], exclude: Iterable[str], full_refresh: bool
    ) -> Plan:
        chosen = select(self.graph, selection, exclude)
        existing = (
            {str(rel): [c for c, _ in cols] for rel, cols in engine.columns().items()} if engine else {}
        )
        recorded = read_versions(engine) if engine else {}
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
            stale = recorded.get(name) is None or (
                markers[name] is not None and recorded[name].parts.get("data") != markers[name]
            )
            # Columns are needed only to validate what reads this table in this run.
            read_here = bool(asset.checks) or any(child in chosen for child in self.graph.children[name])
            if read_here and (full_refresh or stale or name not in existing):
                source_columns[name] = source.schema(asset.table).names
        return make_plan(
            self.graph,
            chosen,
            recorded=recorded,
            existing_columns=existing,
            source_columns=source_columns,
            markers=markers,
            full_refresh=full_refresh,
        )

    def run(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        full_refresh: bool = False,
        wait: float = 0.0,
        listener: Listener | None = None,
    ) -> RunResult:
        lock = self._path(self.project.settings.storage.state).parent / "run.lock"
        with run_lock(lock, wait=wait), self._engine(read_only=False) as engine:
            assert engine is not None
            history = self._history()
            try:
                history.mark_abandoned()
                plan = self._plan(engine, selection, exclude, full_refresh)
                run_id = history.start_run(
                    "run", " ".join([*selection, *(f"--exclude {e}" for e in exclude)])
                )
                result = execute(
                    plan,
                    engine=engine,
                    sources=self.source,
                    history=history,
                    run_id=run_id,
                    listener=listener,
                )
                history.finish_run(
                    run_id, "success" if result.ok else "failed", result.seconds, result.summary()
                )
                return result
            finally:
                history.close()
                self.close()

    def query(self, sql: str) -> pa.Table:
        with self._engine(read_only=True) as engine:
            if engine is None:
                raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
            return engine.query(sql)

    def assets(self, selection: Sequence[str] = ()) -> list[AssetInfo]:
        with self._engine(read_only=True) as engine:
            recorded = read_versions(engine) if engine else {}
        history = self._history()
        try:
            last = history.last_build()
        finally:
            history.close()
        infos = []
        for name in select(self.graph, selection):
            asset, version = self.graph.assets[name], recorded.get(name)
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
                )
            )
        return infos

    def runs(self, limit: int = 20) -> list[RunRecord]:
        history = self._history()
        try:
            return history.runs(limit)
        finally:
            history.close()

    def steps(self, run_id: int) -> list[StepRecord]:
        history = self._history()
        try:
            found = history.steps(run_id)
        finally:
            history.close()
        if not found:
            raise GristmillError(
                f"no run {run_id} in this project's history", hint="`gristmill history` lists the runs"
            )
        return found
