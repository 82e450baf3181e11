"""Run a plan: each step builds its physical table in a transaction, runs its checks there, and
commits only if no blocking check failed (write-audit-publish); at the end the environment's
views switch to every table that succeeded, in one transaction. A failed step skips its
descendants, and the environment keeps serving their previous versions. The runner decides
order, parallelism, retries and time limits; this module decides what a step does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlglot import exp

from gristmill._util.text import shorten
from gristmill.config.secrets import redact
from gristmill.connectors.base import Acknowledging, InterruptibleSource, Source
from gristmill.engines.base import Engine, Interruptible, Relation, Transactions, require_transactions
from gristmill.errors import CheckFailed, ConfigError, EngineError, GristmillError, RunCancelled, StepTimeout
from gristmill.plan.graph import Asset
from gristmill.plan.planner import Plan, Step, view_schema
from gristmill.project.checks import query_reads
from gristmill.project.specs import CheckSpec, ModelSpec
from gristmill.runtime.build.audit import CheckResult, Subject, audit, measured, time_column
from gristmill.runtime.build.hooks import run_hooks
from gristmill.runtime.build.materialize import MaterializeResult, materialize
from gristmill.runtime.build.quarantine import SetAside, set_aside
from gristmill.runtime.load.loader import LoadResult, load_table
from gristmill.runtime.run.commit_groups import CommitGroup
from gristmill.runtime.run.events import (
    Listener,
    RunFinished,
    RunStarted,
    RunStopping,
    StepFinished,
    StepRetrying,
    StepStarted,
)
from gristmill.runtime.run.runner import Finished, Retry, Runner, Task
from gristmill.runtime.run.steplogs import StepLogs
from gristmill.sql import windows
from gristmill.sql.rewrite import render
from gristmill.state.history import RunHistory
from gristmill.state.lake.environments import switch
from gristmill.state.lake.intervals import forget_range
from gristmill.state.lake.versions import record_version
from gristmill.state.records import CheckRecord, MetricRecord, StepRecord

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    asset: str
    kind: str
    action: str
    status: str  # success | switched | skipped | failed | upstream_failed | cancelled
    reason: str
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    checks: tuple[CheckResult, ...] = ()
    load: LoadResult | None = None
    """What a source load read, wrote, set aside and noticed."""
    quarantined: int = 0
    """Rows failing quarantine checks, moved to ``<asset>__quarantine``."""
    dropped: int = 0
    """Rows failing drop checks, removed."""
    metrics: tuple[MetricRecord, ...] = ()
    """The new version's table metrics."""
    attempts: int = 1
    events: tuple[str, ...] = ()
    """What a model's build noticed: late rows, unknown members, columns added."""
    failure: BaseException | None = field(default=None, compare=False, repr=False)
    """The error behind a failed attempt, for the runner to decide on a retry."""


@dataclass
class RunResult:
    run_id: int
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: str | None = None
    """Why the run was asked to stop (a cancel, Ctrl-C, its time limit), if it was."""
    abandoned: tuple[str, ...] = ()
    """Steps that did not stop within the grace period: their work may still run in this process,
    which must not use the engine again (nothing they wrote commits)."""

    @property
    def ok(self) -> bool:
        return self.cancelled is None and all(
            s.status in ("success", "switched", "skipped") for s in self.steps
        )

    @property
    def status(self) -> str:
        if self.cancelled is not None or any(s.status == "cancelled" for s in self.steps):
            return "cancelled"
        return "success" if self.ok else "failed"

    def summary(self) -> dict[str, int | float]:
        count = lambda status: sum(1 for s in self.steps if s.status == status)  # noqa: E731
        checks = [c for s in self.steps for c in s.checks]
        summary: dict[str, int | float] = {
            "built": count("success"),
            "switched": count("switched"),
            "skipped": count("skipped"),
            "failed": count("failed"),
            "not_run": count("upstream_failed"),
            "rows": sum(s.rows or 0 for s in self.steps if s.action == "build"),
            "quarantined": sum(s.load.rows_quarantined for s in self.steps if s.load)
            + sum(s.quarantined for s in self.steps),
            "discarded": sum(s.load.rows_discarded for s in self.steps if s.load)
            + sum(s.dropped for s in self.steps),
            "checks_passed": sum(c.passed for c in checks),
            "checks_failed": sum(not c.passed for c in checks),
            "seconds": round(self.seconds, 3),
        }
        if count("cancelled"):
            summary["cancelled"] = count("cancelled")
        if self.abandoned:
            summary["abandoned"] = len(self.abandoned)
        retried = sum(s.attempts - 1 for s in self.steps if s.attempts > 1)
        if retried:
            summary["retries"] = retried
        return summary


@dataclass(frozen=True)
class RunOptions:
    """How a run executes: ``[run]`` and ``[pools]`` in gristmill.toml, flags on the command line."""

    threads: int = 4
    pools: Mapping[str, int] = field(default_factory=dict)
    retry: Retry = field(default_factory=Retry)
    timeout: float | None = None
    step_timeout: float | None = None
    metrics: bool = True
    samples: int = 5
    grace: float = 10.0
    """Seconds a step asked to stop gets to end before the run abandons it and ends anyway."""


ENGINE_POOL = "engine"
"""Steps that write through an engine without concurrent writers take turns in this pool."""


def execute(
    plan: Plan,
    *,
    engine: Engine | None,
    sources: Callable[[str], Source],
    history: RunHistory,
    run_id: int,
    pointers: Mapping[str, str],
    listener: Listener | None = None,
    python_model: PythonRunner | None = None,
    options: RunOptions = RunOptions(),
    command: str = "run",
    runner: Callable[[Runner], None] | None = None,
) -> RunResult:
    """Build every step into its physical table (in parallel where the engine allows, in
    dependency order), then switch the environment's views to all that succeeded in one
    transaction. ``runner`` receives the runner before it starts (to cancel it from outside)."""
    notify = listener or (lambda event: None)
    result = RunResult(run_id)
    started = time.perf_counter()
    run_time = datetime.now(UTC)
    serving = dict(pointers)  # what each asset reads from: the environment, then this run's tables
    steps = {step.name: step for step in plan.steps}
    order = {step.name: index for index, step in enumerate(plan.steps)}
    logs = StepLogs(run_id)
    began: dict[str, str] = {}
    retried: list[StepRecord] = []
    failed: set[str] = set()  # assets that failed or did not run in this run
    concurrent = engine is not None and engine.SUPPORTS_CONCURRENT_WRITES
    # Steps that take turns on the engine share commits (see runtime/run/commit_groups.py).
    group = (
        CommitGroup(
            engine,
            lambda step, grouped: _build(step, _context(step), group=grouped),
            lambda: coordinator.cancelled is not None,
        )
        if isinstance(engine, Transactions) and not concurrent
        else None
    )

    def _context(step: Step) -> _Context:
        assert engine is not None, "a plan that builds needs an engine"
        return _Context(
            engine,
            sources,
            history,
            run_id,
            run_time,
            serving,
            python_model,
            plan.env,
            options.metrics,
            options.samples,
            lambda: coordinator.stopping(step.name),
            frozenset(failed),
        )

    def task(step: Step) -> Task:
        pools: tuple[str, ...] = ()
        if step.action == "build":
            pools = () if concurrent else (ENGINE_POOL,)
            if step.asset.source is not None:
                pools += (step.asset.source.name,)
        # What its checks read (``after``) only has to be finished: a failure there skips those
        # checks, not the step.
        return Task(
            step.name,
            step.asset.upstream,
            pools,
            options.step_timeout,
            inline=step.action != "build",
            after=step.asset.after,
        )

    def work(task: Task, attempt: int) -> StepResult:
        step = steps[task.name]
        if step.action == "skip":
            return StepResult(step.name, step.asset.kind, "skip", "skipped", step.reason)
        if step.action == "switch":
            outcome = StepResult(step.name, step.asset.kind, "switch", "switched", step.reason)
        else:
            verb = "loading from " + step.asset.source.name if step.asset.source else "building"
            logs.note(step.name, attempt, f"{verb} ({step.reason}) into {step.physical}")
            with logs.capture(step.name, attempt):
                outcome = group.run(step) if group is not None else _build(step, _context(step))
            outcome = replace(outcome, attempts=attempt)
            logs.note(
                step.name, attempt, _describe(outcome), "INFO" if outcome.status == "success" else "ERROR"
            )
            if outcome.status != "success":
                return outcome
        serving[step.name] = step.physical
        return outcome

    def on_start(task: Task, attempt: int) -> None:
        step = steps[task.name]
        if step.action == "build":
            began[task.name] = _now()
            notify(StepStarted(step.name, step.asset.kind, step.reason, attempt))

    def on_retry(task: Task, attempt: int, error: BaseException, delay: float) -> None:
        step, message = steps[task.name], _message(error)
        logs.note(
            task.name, attempt, f"attempt {attempt} failed ({message}); retrying in {delay:.1f}s", "WARNING"
        )
        retried.append(
            StepRecord(
                step.name,
                step.asset.kind,
                "build",
                "failed",
                step.reason,
                step.fingerprint,
                error=message,
                attempt=attempt,
                started_at=began.get(task.name),
            )
        )
        notify(StepRetrying(step.name, attempt, message, delay))

    def outcome_of(finished: Finished) -> StepResult:
        step = steps[finished.task]
        value = finished.value if isinstance(finished.value, StepResult) else None
        if finished.status == "success" and value is not None:
            return value
        if finished.status == "upstream_failed":
            return StepResult(
                step.name,
                step.asset.kind,
                step.action,
                "upstream_failed",
                f"not run: upstream {finished.blocked_by[0]} failed" if finished.blocked_by else "not run",
            )
        if finished.status == "cancelled" and value is None and not finished.attempts:
            return StepResult(
                step.name, step.asset.kind, step.action, "cancelled", f"not run: {_message(finished.error)}"
            )
        error = finished.error
        if isinstance(error, StepTimeout | RunCancelled) or value is None:
            message = _message(error)
            if value is not None and value.error and not isinstance(error, StepTimeout | RunCancelled):
                message = value.error
            base = value or StepResult(step.name, step.asset.kind, step.action, "failed", step.reason)
            status = "cancelled" if isinstance(error, RunCancelled) else "failed"
            return replace(base, status=status, error=message, attempts=finished.attempts or 1)
        return value

    def on_finish(finished: Finished) -> None:
        outcome = outcome_of(finished)
        finished.value = outcome
        if outcome.status not in ("success", "switched", "skipped"):
            failed.add(outcome.asset)
        if isinstance(finished.error, StepTimeout | RunCancelled) and outcome.asset in began:
            logs.note(outcome.asset, outcome.attempts, f"{outcome.status}: {outcome.error}", "ERROR")
        notify(StepFinished(outcome))

    def on_batch(batch: list[Finished]) -> None:
        records, checks, metrics = list(retried), [], []
        retried.clear()
        for finished in batch:
            outcome = finished.value
            assert isinstance(outcome, StepResult)
            records.append(_record(outcome, steps[finished.task], began.get(finished.task)))
            checks += check_records(outcome.checks, run_id, plan.env)
            metrics += list(outcome.metrics)
        history.runs.record_steps(run_id, records, checks, metrics, logs.take())

    def interrupt(name: str) -> None:
        """Stop what a step runs: the engine's statement, and a source's own reader (a file or S3
        read stuck in the source's DuckDB never reaches the engine)."""
        if isinstance(engine, Interruptible):
            engine.interrupt()
        source = steps[name].asset.source
        if source is not None and steps[name].action == "build":
            try:
                reader = sources(source.name)
                if isinstance(reader, InterruptibleSource):
                    reader.interrupt()
            except Exception as err:  # stopping must not fail the coordinator
                _log.warning("could not interrupt source %s: %s", source.name, err)

    coordinator = Runner(
        threads=options.threads,
        pools={ENGINE_POOL: 1, **{name: 1 for name in _source_names(plan)}, **options.pools},
        retry=options.retry,
        timeout=options.timeout,
        interrupt=interrupt,
        on_start=on_start,
        on_retry=on_retry,
        on_finish=on_finish,
        on_batch=on_batch,
        on_stop=lambda reason, running: notify(RunStopping(run_id, reason, tuple(running))),
        grace=options.grace,
        poll=lambda: history.runs.cancel_requested(run_id),
    )
    if runner is not None:
        runner(coordinator)
    notify(RunStarted(run_id, plan, command))
    with logs.installed():
        finished = coordinator.run([task(step) for step in plan.steps], work)
        if group is not None and coordinator.abandoned:
            group.abandon()
        elif group is not None:
            group.flush()
    outcomes = sorted((f.value for f in finished.values()), key=lambda o: order[o.asset])
    if group is not None and group.corrections:
        # Reported successful, then rolled back with a failing group-mate and not rebuilt.
        fixed = [group.corrections.get(o.asset, o) for o in outcomes]
        redone = [o for o in fixed if o.asset in group.corrections]
        history.runs.record_steps(
            run_id,
            [_record(o, steps[o.asset], began.get(o.asset)) for o in redone],
            [],
        )
        for outcome in redone:
            notify(StepFinished(outcome))
        outcomes = fixed
    result.steps.extend(outcomes)
    result.cancelled = coordinator.cancelled
    result.abandoned = tuple(coordinator.abandoned)
    switched = {
        o.asset: steps[o.asset].physical
        for o in outcomes
        if o.status in ("success", "switched")
        and steps[o.asset].asset.kind != "source"
        and pointers.get(o.asset) != steps[o.asset].physical
    }
    if result.abandoned:
        # A step still holds the engine session (stuck in a statement or in user code): it must not
        # be used again. What succeeded stays built and recorded; the next run switches to it.
        switched = {}
    elif switched or plan.removed:
        assert engine is not None, "a plan that switches needs an engine"
        with require_transactions(engine, "switching an environment's views together").transaction():
            switch(engine, plan.env, switched, plan.removed, run_id)
    result.seconds = time.perf_counter() - started
    notify(RunFinished(result, result.status))
    return result


def _describe(outcome: StepResult) -> str:
    """One log line on what a build did."""
    if outcome.status != "success":
        return f"failed after {outcome.seconds:.2f}s: {outcome.error}"
    parts = [f"{outcome.rows:,} rows" if outcome.rows is not None else "done"]
    if outcome.load is not None:
        parts.append(f"{outcome.load.rows_read:,} read")
        parts += list(outcome.load.events)
    parts += list(outcome.events)
    if outcome.quarantined or outcome.dropped:
        parts.append(f"{outcome.quarantined:,} quarantined, {outcome.dropped:,} dropped")
    if outcome.checks:
        failed = [c.check.name for c in outcome.checks if not c.passed]
        passed = len(outcome.checks) - len(failed)
        parts.append(
            f"checks {passed}/{len(outcome.checks)} passed"
            + (f" ({', '.join(failed)} failed)" if failed else "")
        )
    return f"{', '.join(parts)} in {outcome.seconds:.2f}s"


def _source_names(plan: Plan) -> set[str]:
    return {s.asset.source.name for s in plan.steps if s.asset.source is not None}


def _message(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, GristmillError):
        return redact(error.message)
    return redact(f"{type(error).__name__}: {error}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


PythonRunner = Callable[[Engine, ModelSpec, Callable[[str], exp.Table]], exp.Query]


@dataclass(frozen=True)
class _Context:
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


def check_records(results: Sequence[CheckResult], run_id: int, env: str) -> list[CheckRecord]:
    return [
        CheckRecord(
            run_id,
            c.check.asset,
            c.check.name,
            c.check.severity,
            "pass" if c.passed else "fail",
            c.failures,
            c.samples,
            c.detail,
            env=env,
        )
        for c in results
    ]


def _record(outcome: StepResult, step: Step, started_at: str | None = None) -> StepRecord:
    load = outcome.load
    return StepRecord(
        outcome.asset,
        outcome.kind,
        outcome.action,
        outcome.status,
        outcome.reason,
        step.fingerprint,
        outcome.rows,
        round(outcome.seconds, 4),
        outcome.error,
        rows_read=load.rows_read if load else None,
        rows_quarantined=load.rows_quarantined if load else None,
        rows_discarded=load.rows_discarded if load else None,
        bytes_read=load.bytes_read if load else None,
        events=tuple(load.events) if load else outcome.events,
        attempt=outcome.attempts,
        started_at=started_at,
    )


def _reads_failed(check: CheckSpec, asset: Asset, failed: frozenset[str]) -> str | None:
    """An asset this check reads (besides its own) that failed or did not run in this run."""
    reads = [str(check.params["to"]).rsplit(".", 1)[0]] if check.kind == "relationships" else []
    reads += query_reads(check) if check.kind == "query" else []
    return next((r for r in reads if r in asset.after and r in failed), None)


def _build(step: Step, context: _Context, *, group: bool = False) -> StepResult:
    asset, engine = step.asset, context.engine
    started = time.perf_counter()
    # Whether the environment serves a version now (a failed check keeps it; a first build has none).
    published = (
        asset.name in context.serving if asset.kind != "source" else engine.exists(Relation.of(asset.name))
    )
    blocked = {c: read for c in asset.checks if (read := _reads_failed(c, asset, context.failed))}
    checks: tuple[CheckResult, ...] = ()
    metrics: tuple[MetricRecord, ...] = ()
    load: LoadResult | None = None
    quarantined = dropped = 0
    events: tuple[str, ...] = ()
    target = Relation.of(step.physical)
    # Checks and a model's reads of itself see the new table before anyone else does.
    here = replace(context, serving={**context.serving, asset.name: step.physical})
    try:
        with require_transactions(engine, "a step's build").transaction(group=group):
            if asset.kind == "source":
                assert asset.source is not None
                source = context.sources(asset.source.name)
                load = load_table(asset, engine, source, context.run_id, refresh=step.refresh)
                rows: int | None = load.rows_written
            else:
                built = _build_model(step, target, here, previous=context.serving.get(asset.name))
                rows, events = built.rows, tuple(built.events)
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
                moved = _set_aside(step, target, aside, here)
                quarantined, dropped = moved.quarantined, moved.dropped
                rows = None if rows is None else rows - quarantined - dropped
            others = tuple(
                c for c in asset.checks if c.severity not in ("quarantine", "drop") and c not in blocked
            )
            for check, read in blocked.items():
                _log.warning("check %s not run: it reads %s, which failed in this run", check.name, read)
            checks = tuple(CheckResult(c, moved.failures[c]) for c in aside) if aside else ()
            audited = audit(_subject(asset, here, rows), others, engine, context.history)
            checks += audited.checks
            metrics = audited.metrics
            blocking = [c for c in checks if not c.passed and c.check.severity == "error"]
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
                rows,
                replace=step.recorded,
            )
            if context.stopped():
                raise EngineError("stopped before it committed: nothing was published")
        if load is not None and load.cursor is not None:
            _acknowledge(source, asset, load)
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
            checks=checks,
            load=load,
            failure=err,
        )
    return StepResult(
        asset.name,
        asset.kind,
        "build",
        "success",
        step.reason,
        rows,
        time.perf_counter() - started,
        checks=checks,
        load=load,
        quarantined=quarantined,
        dropped=dropped,
        metrics=metrics,
        events=events,
    )


def _subject(asset: Asset, context: _Context, rows: int | None) -> Subject:
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


def _set_aside(step: Step, target: Relation, checks: tuple[CheckSpec, ...], context: _Context) -> SetAside:
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


def _hook_tables(context: _Context, asset: str, this: str) -> Callable[[str], exp.Table | None]:
    """Asset names in a hook, as the tables this run serves; the model itself as ``this``."""

    def physical(name: str) -> exp.Table | None:
        if name == asset:
            return context.engine.table(Relation.of(this))
        return context.physical(name) if name in context.serving else None

    return physical


def _build_model(
    step: Step, target: Relation, context: _Context, previous: str | None = None
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


def _materialized(step: Step, target: Relation, context: _Context) -> MaterializeResult:
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
            query = windows.replace_table(
                query,
                lambda table: table.name == stream.name and table.db == stream.db,
                lambda table: windows.windowed(table, time, window, key),
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
        raise EngineError(
            f"{model.file}: the engine rejected the model: {err}",
            hint=f"the SQL could not be parsed ({asset.parsed.warning}), so it ran as written; fix it there"
            if unparsed and asset.parsed is not None
            else "the SQL passed validation, so check types and functions for the engine",
        ) from None


def _parts(table: exp.Table, bare: bool) -> tuple[str | None, str, str]:
    return None if bare else table.catalog, table.db, table.name
