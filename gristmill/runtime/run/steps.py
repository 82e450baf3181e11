"""What one step of a run does: build its new version (load a source's table, or materialize a
model with its hooks), set failing rows aside, audit it and record the version, all in one
transaction that commits only if no blocking check failed (write-audit-publish). The run loop
(``executor``) decides which steps run and when."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlglot import exp

from gristmill._util.text import shorten
from gristmill.config.secrets import redact
from gristmill.connectors.base import Acknowledging, Source
from gristmill.engines.base import Engine, Relation, require_transactions
from gristmill.errors import CheckFailed, ConfigError, EngineError, GristmillError
from gristmill.plan.graph import Asset
from gristmill.plan.planner import Step, view_schema
from gristmill.project.checks import query_reads
from gristmill.project.specs import CheckSpec, ModelSpec
from gristmill.runtime.build.audit import Subject, audit, measured, time_column
from gristmill.runtime.build.hooks import run_hooks
from gristmill.runtime.build.materialize import MaterializeResult, materialize
from gristmill.runtime.build.quarantine import SetAside, set_aside
from gristmill.runtime.load.loader import load_table
from gristmill.runtime.results import CheckResult, LoadResult, StepResult
from gristmill.sql import windows
from gristmill.sql.locate import locate, without_rendered_position
from gristmill.sql.rewrite import render
from gristmill.state.history import RunHistory
from gristmill.state.lake.intervals import forget_range
from gristmill.state.lake.versions import record_version
from gristmill.state.records import MetricRecord

_log = logging.getLogger(__name__)


PythonRunner = Callable[[Engine, ModelSpec, Callable[[str], exp.Table]], exp.Query]


@dataclass(frozen=True)
class StepContext:
    """What a step needs of its run: the engine and sources, the tables the run serves so far."""

    engine: Engine
    sources: Callable[[str], Source]
    history: RunHistory
    run_id: int
    run_time: datetime
    serving: Mapping[str, str]
    python_model: PythonRunner | None
    env: str = "prod"
    metrics: bool = True
    samples: int = 5
    stopped: Callable[[], bool] = lambda: False
    """Whether the runner asked this step to stop (a cancel, a timeout): then it must not commit."""
    failed: frozenset[str] = frozenset()
    """Assets that failed or were not run earlier in this run: checks reading them do not run."""

    def physical(self, asset: str) -> exp.Table:
        return self.engine.table(Relation.of(self.serving.get(asset, asset)))


def _reads_failed(check: CheckSpec, asset: Asset, failed: frozenset[str]) -> str | None:
    """An asset this check reads (besides its own) that failed or did not run in this run."""
    reads = [str(check.params["to"]).rsplit(".", 1)[0]] if check.kind == "relationships" else []
    reads += query_reads(check) if check.kind == "query" else []
    return next((r for r in reads if r in asset.after and r in failed), None)


@dataclass
class _Progress:
    """What a build has done so far: a failure still reports the load and the checks it reached."""

    rows: int | None = None
    load: LoadResult | None = None
    source: Source | None = None
    events: tuple[str, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    metrics: tuple[MetricRecord, ...] = ()
    quarantined: int = 0
    dropped: int = 0


def build_step(step: Step, context: StepContext, *, group: bool = False) -> StepResult:
    """Build one step's new version in a transaction, audit it there and record the version; a
    blocking check failure (or a stop) rolls it all back. ``group``: in the commit group's shared
    transaction."""
    asset, engine = step.asset, context.engine
    started = time.perf_counter()
    # Whether the environment serves a version now (a failed check keeps it; a first build has none).
    published = (
        asset.name in context.serving if asset.kind != "source" else engine.exists(Relation.of(asset.name))
    )
    done = _Progress()
    # Checks and a model's reads of itself see the new table before anyone else does.
    here = replace(context, serving={**context.serving, asset.name: step.physical})
    try:
        with require_transactions(engine, "a step's build").transaction(group=group):
            _write(step, context, here, done)
            _judge(step, here, published, done)
            # The physical tables it read: a view reads them by name for as long as it exists.
            inputs = sorted(here.serving.get(up, up) for up in asset.upstream)
            parts = {**step.parts, "inputs": inputs, "kind": asset.kind}
            record_version(
                engine,
                step.physical,
                asset.name,
                step.fingerprint,
                parts,
                context.run_id,
                done.rows,
                replace=step.recorded,
            )
            if context.stopped():
                raise EngineError("stopped before it committed: nothing was published")
        if done.load is not None and done.load.cursor is not None:
            assert done.source is not None
            _acknowledge(done.source, asset, done.load)
    except GristmillError as err:
        where = asset.model.file if asset.model is not None else asset.file
        message = str(err) if str(err).startswith(where.split(":")[0]) else f"{where}: {err}"
        return StepResult(
            asset.name,
            asset.kind,
            "build",
            "failed",
            step.reason,
            seconds=time.perf_counter() - started,
            error=shorten(redact(message)),
            checks=done.checks,
            load=done.load,
            failure=err,
        )
    return StepResult(
        asset.name,
        asset.kind,
        "build",
        "success",
        step.reason,
        done.rows,
        time.perf_counter() - started,
        checks=done.checks,
        load=done.load,
        quarantined=done.quarantined,
        dropped=done.dropped,
        metrics=done.metrics,
        events=done.events,
    )


def _write(step: Step, context: StepContext, here: StepContext, done: _Progress) -> None:
    """Load a source's table or build a model's, into the step's physical table."""
    asset = step.asset
    if asset.kind == "source":
        assert asset.source is not None
        done.source = context.sources(asset.source.name)
        done.load = load_table(asset, context.engine, done.source, context.run_id, refresh=step.refresh)
        done.rows = done.load.rows_written
    else:
        built = _build_model(step, Relation.of(step.physical), here, previous=context.serving.get(asset.name))
        done.rows, done.events = built.rows, tuple(built.events)


def _judge(step: Step, here: StepContext, published: bool, done: _Progress) -> None:
    """Set failing rows aside, then audit the new version; raise if a blocking check failed."""
    asset = step.asset
    blocked = {c: read for c in asset.checks if (read := _reads_failed(c, asset, here.failed))}
    aside = tuple(c for c in asset.checks if c.severity in ("quarantine", "drop"))
    unjudged = [c for c in aside if c in blocked]
    if unjudged:
        # Rows cannot be set aside against a parent that is missing: never let them through.
        raise CheckFailed(
            f"{unjudged[0].name} ({unjudged[0].severity}) reads {blocked[unjudged[0]]}, which "
            "failed in this run, so its rows cannot be judged",
            hint="fix the failure upstream and rerun",
        )
    if aside:
        moved = _set_aside(step, Relation.of(step.physical), aside, here)
        done.quarantined, done.dropped = moved.quarantined, moved.dropped
        done.rows = None if done.rows is None else done.rows - done.quarantined - done.dropped
    others = tuple(c for c in asset.checks if c.severity not in ("quarantine", "drop") and c not in blocked)
    for check, read in blocked.items():
        _log.warning("check %s not run: it reads %s, which failed in this run", check.name, read)
    done.checks = tuple(CheckResult(c, moved.failures[c]) for c in aside) if aside else ()
    audited = audit(_subject(asset, here, done.rows), others, here.engine, here.history)
    done.checks += audited.checks
    done.metrics = audited.metrics
    blocking = [c for c in done.checks if not c.passed and c.check.severity == "error"]
    if blocking:
        raise CheckFailed(
            "; ".join(
                f"{c.check.name}: {c.detail}"
                if c.detail
                else f"{c.check.name} failed for {c.failures} row{'s' * (c.failures != 1)}"
                for c in blocking
            ),
            hint=(
                "the previous version stays published"
                if published
                else "nothing is published for it until its checks pass (it has no previous version)"
            )
            + "; fix the data or the model and rerun",
        )


def _subject(asset: Asset, context: StepContext, rows: int | None) -> Subject:
    """What the audit of a new version needs. Checked assets are measured (views only when their
    checks scan them anyway); anomaly checks need their metrics whatever the setting."""
    rewritten = asset.kind == "table" or (asset.table is not None and asset.table.load.write == "replace")
    return Subject(
        asset.name,
        context.physical,
        context.env,
        context.run_id,
        rows_written=rows,
        table_rows=rows if rewritten else None,
        time_column=time_column(asset),
        personal=tuple(asset.contract.pii) if asset.contract else (),
        measure=measured(asset, context.metrics and bool(asset.checks)),
        samples=context.samples,
        distinct=any(c.kind == "anomaly" and c.params["metric"] == "distinct_ratio" for c in asset.checks),
    )


def _set_aside(step: Step, target: Relation, checks: tuple[CheckSpec, ...], context: StepContext) -> SetAside:
    asset = step.asset
    if asset.kind == "view":
        raise ConfigError(
            f"{asset.name} is a view: severity {checks[0].severity} sets rows aside, which needs a table",
            location=checks[0].location,
            hint="make the model a table (kind: table), or use severity error or warn",
        )
    schema, name = asset.name.split(".", 1)
    home = schema if asset.kind == "source" else view_schema(schema, context.env)
    return set_aside(context.engine, target, Relation(home, f"{name}__quarantine"), checks, context.run_id)


def _acknowledge(source: Source, asset: Asset, load: LoadResult) -> None:
    """Tell a source that keeps its own position (a replication slot) that the data is committed."""
    if isinstance(source, Acknowledging) and asset.table is not None and load.cursor is not None:
        value = load.cursor.value
        source.acknowledge(asset.table, int(value) if value.lstrip("-").isdigit() else value)


def _hook_tables(context: StepContext, asset: str, this: str) -> Callable[[str], exp.Table | None]:
    """Asset names in a hook, as the tables this run serves; the model itself as ``this``."""

    def physical(name: str) -> exp.Table | None:
        if name == asset:
            return context.engine.table(Relation.of(this))
        return context.physical(name) if name in context.serving else None

    return physical


def _build_model(
    step: Step, target: Relation, context: StepContext, previous: str | None = None
) -> MaterializeResult:
    """``previous``: the table the environment served for it before this run (pre-hooks see it)."""
    asset, engine = step.asset, context.engine
    model = asset.model
    assert model is not None
    if model.pre_hooks:
        this = previous if previous and engine.exists(Relation.of(previous)) else step.physical
        run_hooks(engine, model.pre_hooks, _hook_tables(context, asset.name, this), "pre-hook")
    built = _materialized(step, target, context)
    if model.post_hooks:
        run_hooks(engine, model.post_hooks, _hook_tables(context, asset.name, step.physical), "post-hook")
    return built


def _materialized(step: Step, target: Relation, context: StepContext) -> MaterializeResult:
    asset, engine = step.asset, context.engine
    model = asset.model
    assert model is not None
    # A full refresh keeps the history of snapshots and dimensions (it cannot be rebuilt from the
    # current source rows); every other kind starts over.
    keeps_history = asset.kind in ("snapshot", "dimension")
    incremental = (not step.refresh or keeps_history) and engine.exists(target)
    if step.restate is not None and incremental:
        forget_range(engine, str(target), *step.restate, model.interval)
    if asset.parsed is None:
        if context.python_model is None:
            raise EngineError(f"{model.file}: Python models cannot run here")
        query = context.python_model(engine, model, context.physical)
    else:
        parsed = asset.incremental_parsed if incremental and asset.incremental_parsed else asset.parsed
        # A view keeps its query in the catalog: no catalog name in it, so it resolves in its own
        # lake whatever a reader attaches it as.
        bare = asset.kind == "view"
        query = render(
            parsed, {up: _parts(context.physical(up), bare) for up in (*asset.upstream, asset.name)}
        )
        if asset.stream_input and model.window and model.time:
            # Built as a batch, a stream model reads its stream's landed table in windows.
            stream = context.physical(asset.stream_input)
            window, time, key = model.window, model.time, model.key
            # A session window names the stream's columns (else it needs `* EXCLUDE`, which not
            # every engine has); the other kinds only add columns.
            names = [c for c, _ in engine.describe(stream)] if window.kind == "session" else None
            query = windows.replace_table(
                query,
                lambda table: table.name == stream.name and table.db == stream.db,
                lambda table: windows.windowed(table, time, window, key, names),
            )
    try:
        return materialize(
            engine,
            model,
            query,
            target,
            incremental=incremental,
            run_id=context.run_id,
            run_time=context.run_time,
            physical=context.physical,
            window=step.window,
            partitions=step.partitions,
        )
    except EngineError as err:
        unparsed = asset.parsed is not None and asset.parsed.passthrough
        # The engine's position is in the rendered SQL: name the model's own line instead.
        found = locate(asset.parsed, err.message) if asset.parsed is not None else None
        where = f"{model.file}:{found[0]}:{found[1]}" if found else model.file
        message = without_rendered_position(err.message, located=found is not None)
        raise EngineError(
            f"{where}: the engine rejected the model: {message}",
            hint=f"the SQL could not be parsed ({asset.parsed.warning}), so it ran as written; fix it there"
            if unparsed and asset.parsed is not None
            else "the SQL passed validation, so check types and functions for the engine",
        ) from None


def _parts(table: exp.Table, bare: bool) -> tuple[str | None, str, str]:
    return None if bare else table.catalog, table.db, table.name
