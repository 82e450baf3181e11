"""The facade every interface calls: plan, run, query, list assets, read history.

One short method per verb: it holds the project, its asset graph and its open resources, and
hands each verb to the runtime module that does it. The runtime is imported inside the verbs, so
that loading the facade (every CLI command does) costs only the project's own reading."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runtime is imported by the verbs that use it
    from multiprocessing.connection import Connection  # multiprocessing: the scheduler only

    import pyarrow as pa
    from fastapi import APIRouter

    from gristmill.config.settings import ProjectSettings
    from gristmill.connectors import Source
    from gristmill.engines import Engine
    from gristmill.plan import AssetGraph, Plan
    from gristmill.plan.lineage import Lineage
    from gristmill.project import Project
    from gristmill.runtime.backfill import BackfillResult
    from gristmill.runtime.compiled import CompiledModel
    from gristmill.runtime.published import AssetInfo
    from gristmill.runtime.results import CheckRun, RunResult
    from gristmill.runtime.run.events import Listener
    from gristmill.runtime.run.runner import Runner
    from gristmill.runtime.schedule.scheduler import Launch
    from gristmill.runtime.session import Session
    from gristmill.runtime.unittests import UnitTestRun
    from gristmill.server.reading import TableReader
    from gristmill.state import CheckRecord, LogRecord, MetricRecord, RunRecord, StepRecord
    from gristmill.streaming.settings import StreamSettings
    from gristmill.streaming.stats import StreamStats
    from gristmill.workspace.keys import ApiKeys
    from gristmill.workspace.metrics import MetricAnswer, MetricInfo
    from gristmill.workspace.serving import Announce
    from gristmill.workspace.streams import StatusFile

Span = tuple[datetime, datetime]


class Workspace:
    def __init__(
        self, start: Path | str = ".", dbt_vars: dict[str, Any] | None = None, *, target: str | None = None
    ) -> None:
        """``dbt_vars``: a dbt project's ``--vars``; ``target``: the target to work on (else
        ``GRISTMILL_TARGET``, else the project's default; see config/targets.py)."""
        from gristmill.engines.registry import compile_probe
        from gristmill.project import load_project
        from gristmill.runtime.planning import load_graph
        from gristmill.runtime.session import Session

        self.project: Project = load_project(Path(start), dbt_vars, compile_probe, target=target)
        self._session: Session = Session(self.project)
        self.graph: AssetGraph = load_graph(self.project, self._session)

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def target(self) -> str | None:
        """Which target and engine this workspace works on, ``target prod (postgres
        user@host:5432/db)`` with any password masked; None for a project without targets."""
        from gristmill.config.targets import describe

        return describe(self.project.settings)

    def source(self, name: str) -> Source:
        return self._session.source(name)

    @contextmanager
    def _engine(self, *, read_only: bool, settings: ProjectSettings | None = None) -> Iterator[Engine | None]:
        """The lake's engine (None, read-only, before the first run), for tests that look inside."""
        with self._session.engine(read_only=read_only, settings=settings) as engine:
            yield engine

    def close(self) -> None:
        self._session.close()

    # -- verbs -------------------------------------------------------------------------------------

    def plan(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        full_refresh: bool = False,
    ) -> Plan:
        from gristmill.runtime.planning import PlanRequest, plan

        return plan(
            self._session, self.graph, PlanRequest(tuple(selection), tuple(exclude), env, full_refresh)
        )

    def run(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        full_refresh: bool = False,
        wait: float = 0.0,
        listener: Listener | None = None,
        restate: Span | None = None,
        window: Span | None = None,
        partitions: Sequence[str] | None = None,
        command: str = "run",
        threads: int | None = None,
        timeout: float | None = None,
        runner: Callable[[Runner], None] | None = None,
    ) -> RunResult:
        """Plan and run the selection (see runtime/launch.py). ``wait``: seconds to wait for another
        run; ``window``: only the time-range models' intervals in [start, end) (a backfill's chunk)."""
        from gristmill.runtime import launch, planning

        request = planning.PlanRequest.of(selection, exclude, env, full_refresh, restate, window, partitions)
        job = launch.Job(command, listener, runner, threads, timeout)
        return launch.run(self._session, self.graph, request, job, wait)

    def gc(self, *, older_than_days: int = 7) -> list[str]:
        """Drop every model table no environment serves (and no served view reads), expire lake
        snapshots older than ``older_than_days`` and delete the files only they used."""
        from gristmill.runtime.maintenance import gc

        return gc(self._session, older_than_days)

    def promote(self, source_env: str, target_env: str = "prod") -> dict[str, str]:
        """Point ``target_env`` at the tables ``source_env`` serves: nothing is rebuilt. Returns the
        models whose table changed."""
        from gristmill.runtime.maintenance import promote

        return promote(self._session, source_env, target_env)

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
        from gristmill.runtime.published import check

        return check(self._session, self.graph, selection, exclude, env, wait)

    def quality_history(
        self, assets: Sequence[str], *, env: str = "prod", runs: int = 30
    ) -> tuple[list[CheckRecord], list[MetricRecord]]:
        """Check results and metrics of these assets over their latest ``runs`` runs."""
        with self._session.history() as history:
            checks = history.quality.check_results(list(assets), env=env, runs=runs)
            return checks, history.quality.metric_series(list(assets), env=env, runs=runs)

    def query(self, sql: str, env: str = "prod") -> pa.Table:
        from gristmill.runtime.published import query

        return query(self._session, sql, env)

    def metrics(self) -> list[MetricInfo]:
        """The metrics of ``metrics/*.yml``, with the dimensions and grains each can be asked by."""
        from gristmill.workspace.metrics import metric_infos

        return metric_infos(self.project)

    def metric(
        self,
        name: str,
        *,
        by: Sequence[str] = (),
        grain: str | None = None,
        where: Sequence[str] = (),
        env: str = "prod",
        run: bool = True,
    ) -> MetricAnswer:
        """A metric by ``by`` (dimensions) at ``grain``, filtered by ``where`` (``country:in:DE,FR``),
        on the tables ``env`` serves; ``run=False``: only its SQL (the answer's table is empty)."""
        from gristmill.workspace import metrics

        return metrics.answer(self._session, metrics.ask(name, by, grain, where), env, run=run)

    def lineage(self, target: str, env: str = "prod") -> Lineage:
        """Column lineage of an asset or one of its columns, upstream and downstream."""
        from gristmill.runtime.published import lineage, split_column

        split_column(target, self.graph)  # an unknown asset is refused before planning
        return lineage(self.graph, self.plan(env=env), target)

    def assets(self, selection: Sequence[str] = (), env: str = "prod") -> list[AssetInfo]:
        from gristmill.runtime.published import assets

        return assets(self._session, self.graph, selection, env)

    def runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]:
        with self._session.history() as history:
            return history.runs.recent(limit, status=status, command=command, asset=asset, since=since)

    def logs(self, run_id: int, asset: str | None = None, *, grep: str | None = None) -> list[LogRecord]:
        """What the steps of a run logged (one step's with ``asset``), optionally only matching lines."""
        from gristmill.runtime.runlog import logs

        return logs(self._session, self.graph, run_id, asset, grep)

    def cancel(self, run_id: int, *, wait: float = 30.0) -> RunRecord:
        """Ask a running run to stop (what it is building rolls back) and wait for it to end."""
        from gristmill.runtime.runlog import cancel

        return cancel(self._session, run_id, wait)

    def failed_steps(self, run_id: int) -> list[str]:
        """The assets a run failed, did not run because of a failure, or cancelled (of a run whose
        process died, every asset it recorded)."""
        from gristmill.runtime.runlog import failed_steps

        return failed_steps(self._session, self.graph, run_id)

    def steps(self, run_id: int) -> list[StepRecord]:
        from gristmill.runtime.runlog import steps

        return steps(self._session, run_id)

    def compile(
        self,
        selection: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        env: str = "prod",
        dialect: str | None = None,
    ) -> list[CompiledModel]:
        """Each selected model's query as the target's engine (or ``dialect``: duckdb, postgres,
        redshift, spark) would run it, reading what ``env`` serves; nothing is opened."""
        from gristmill.runtime.compiled import compile_models

        return compile_models(self.project, self.graph, selection, exclude, env, dialect)

    def test(
        self, names: Sequence[str] = (), selection: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> UnitTestRun:
        """Run the unit tests in tests/*.yml (by name, and/or of the selected models) in memory."""
        from gristmill.plan import select
        from gristmill.runtime.unittests import run_unit_tests, select_tests  # `gristmill test` only

        models = set(select(self.graph, selection, exclude)) if selection or exclude else None
        return run_unit_tests(self.project, select_tests(self.project, names, models))

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
        from gristmill.runtime.stream_start import StreamAsk, run_stream

        return run_stream(self._session, self.graph, StreamAsk(model, env, settings, stop, on_commit))

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
        """Build the selected partitioned models a chunk of partitions per run, keeping each
        partition's outcome; ``resume``: continue a stopped backfill (see runtime/backfill)."""
        from gristmill.runtime.backfill import Ask, BackfillRequest, backfill

        values = tuple(partitions) if partitions is not None else None
        request = BackfillRequest(tuple(selection), values, reprocess, chunk, env)
        ask = Ask(request, start, end, resume, wait, listener)
        return backfill(self._session, self.graph, ask)

    def backfills(self, backfill_id: int | None = None, *, limit: int = 20) -> list[BackfillResult]:
        """Recent backfills, newest first, or one with its partitions. A backfill whose process died
        shows as interrupted (it is resumed like a cancelled one)."""
        from gristmill.runtime.backfill import listing

        return listing(self._session, backfill_id, limit)

    def stream_status(self, model: str) -> StatusFile:
        """Where this process reports its stream of ``model`` (``gristmill streams`` reads it)."""
        from gristmill.workspace.streams import StatusFile

        return StatusFile(self.root, model)

    def streams(self, *, everything: bool = True) -> list[dict[str, Any]]:
        """Every stream process's last report, with its state (see ``workspace.streams``)."""
        from gristmill.workspace.streams import read_statuses

        return read_statuses(self.root, everything=everything)

    def api_keys(self) -> ApiKeys:
        """The project's API keys (``gristmill keys``); ``gristmill serve`` checks each request
        against them (``server.auth.install_auth``). Close it when done."""
        from gristmill.workspace.keys import ApiKeys

        return ApiKeys(self.project.path(self.project.settings.storage.state))

    def reader(self, env: str = "prod") -> TableReader:
        """What ``gristmill serve`` reads the tables ``env`` serves through: pinned snapshots, the
        catalog, data-version keys (see ``gristmill/server/reading.py`` for the API)."""
        from gristmill.workspace.reading import LakeReader

        return LakeReader(self.project, self.graph, env)

    def _metrics_router(self, env: str) -> APIRouter:
        """The metrics API (``server/metrics_api.py``) over this workspace, for ``serve``."""
        from gristmill.server.metrics_api import router

        return router(self, env=env)

    def serve(
        self,
        *,
        port: int | None = None,
        http: bool = True,
        announce: Announce | None = None,
        no_auth: bool = False,
        allow_sql: bool | None = None,
        pg_port: int | None = None,
        pg_tls: tuple[str, str] | None = None,
        **where: str | None,
    ) -> None:
        """Run the schedules (if any) until SIGINT or SIGTERM, each run in its own process, with the
        HTTP endpoint unless ``http`` is false (``_serving_parts``: what it serves of ``where["env"]``)."""
        from gristmill.workspace.serving import serve

        self.close()
        env, host = where.get("env") or "prod", where.get("host")
        parts = _serving_parts(self, env, host, no_auth, allow_sql, pg_port, pg_tls) if http else {}
        target, quiet = self.project.settings.target, announce or (lambda names, url: None)
        serve(
            self.root, scheduled_run, port=port, http=http, announce=quiet, target=target, host=host, **parts
        )


def _serving_parts(
    workspace: Workspace,
    env: str,
    host: str | None,
    no_auth: bool,
    allow_sql: bool | None,
    pg_port: int | None,
    pg_tls: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """What ``serve`` hands the HTTP endpoint: the tables reader, the metrics and SQL routers
    (``allow_sql`` adds ``POST /api/v1/sql``, ``pg_port`` opens the PostgreSQL wire door; both
    default to ``[server]``), the API keys ``/api/v1/*`` and the door ask for (none with
    ``no_auth``, on loopback only; off loopback the door needs ``pg_tls``) and the SQL doors to
    close at the end. The SQL doors read through the tables reader (its pinned snapshots)."""
    from gristmill.server.pgwire import check_door
    from gristmill.workspace.sql_reading import open_sql_doors

    settings = workspace.project.settings.server
    port = settings.pg_port if pg_port is None else pg_port
    check_door(host or settings.host, port, no_auth=no_auth, tls=pg_tls)
    tables, keys = workspace.reader(env), None if no_auth else workspace.api_keys()
    doors = open_sql_doors(
        workspace, env, allow_sql=allow_sql, pg_port=port, host=host, tables=tables, keys=keys, tls=pg_tls
    )
    return {
        "reader": tables,
        "routers": [
            workspace._metrics_router(env),
            *doors.routers,
            *_ui_routers(workspace, tables, env, keys, doors),
        ],
        "keys": keys,
        "no_auth": no_auth,
        "closing": [doors.stop],
    }


def _ui_routers(workspace: Workspace, tables: Any, env: str, keys: Any, doors: Any) -> list[Any]:
    """The web UI at ``/`` (``gristmill.ui``), its asset graph and the dashboards: the same
    reader and keys as the API. The graph and dashboards come first: the UI's menu holds
    placeholders at their addresses. Explore runs SQL through the SQL endpoint's reader when
    the endpoint is on (``doors.routers``)."""
    from gristmill.dashboards.router import dashboards_router
    from gristmill.runtime.datadiff import diff
    from gristmill.ui import UiServices, ui_router
    from gristmill.ui.access import behind_login
    from gristmill.ui.graph.router import graph_router
    from gristmill.ui.registry import site_bar

    compare = lambda asked: diff(workspace.project, workspace.graph, asked)  # noqa: E731
    sql = doors.reader if doors.routers else None
    vendor, bar = "/ui/static/vendor", site_bar("dashboards")
    return [
        behind_login(graph_router(workspace, env), keys),
        behind_login(dashboards_router(workspace.project, tables, scripts_url=vendor, site_bar=bar), keys),
        ui_router(UiServices(workspace, tables, env, compare, keys, sql=sql)),
    ]


def create_demo(folder: Path, *, force: bool = False) -> Path:
    """Write the example project (``gristmill init``) into ``folder``."""
    from gristmill.project.scaffold import create_demo as create

    return create(folder, force=force)


def scheduled_run(root: Path, launch: Launch, conn: Connection) -> None:
    """The body of a scheduled run, in its own process: run the selection and report back."""
    from gristmill.errors import GristmillError
    from gristmill.runtime.run.events import RunStarted

    def listen(event: object) -> None:
        if isinstance(event, RunStarted):
            conn.send(("run", event.run_id))

    try:
        result = Workspace(root, target=launch.target).run(
            list(launch.select),
            list(launch.exclude),
            env=launch.env,
            full_refresh=launch.full_refresh,
            wait=float("inf"),
            listener=listen,
            command=f"schedule {launch.schedule}",
        )
        conn.send(("done", result.status))
    except GristmillError as err:
        conn.send(("error", err.message))
    except KeyboardInterrupt:
        conn.send(("done", "cancelled"))
    finally:
        conn.close()
