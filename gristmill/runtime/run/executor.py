"""Run a plan: each step builds its physical table in a transaction, runs its checks there, and
commits only if no blocking check failed (write-audit-publish, see ``steps``); at the end the
environment's views switch to every table that succeeded, in one transaction. A failed step skips
its descendants, and the environment keeps serving their previous versions. The runner decides
order, parallelism, retries and time limits; this module ties the steps to it and records them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from gristmill.config.secrets import redact
from gristmill.connectors.base import InterruptibleSource, Source
from gristmill.engines.base import Engine, Interruptible, SizedSteps, Transactions, require_transactions
from gristmill.errors import GristmillError, RunCancelled, StepTimeout
from gristmill.plan.planner import Plan, Step
from gristmill.runtime.results import RunResult, StepResult
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
from gristmill.runtime.run.records import check_records, describe, step_record
from gristmill.runtime.run.runner import Finished, Retry, Runner, Task
from gristmill.runtime.run.sizes import InputSizes
from gristmill.runtime.run.steplogs import StepLogs
from gristmill.runtime.run.steps import PythonRunner, StepContext, build_step
from gristmill.state.history import RunHistory
from gristmill.state.lake.environments import switch
from gristmill.state.records import StepRecord

_log = logging.getLogger(__name__)


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
    started = time.perf_counter()
    run = _Run(plan, engine, sources, history, run_id, pointers, listener, python_model, options)
    if runner is not None:
        runner(run.coordinator)
    run.notify(RunStarted(run_id, plan, command))
    with run.logs.installed():
        finished = run.coordinator.run([run.task(step) for step in plan.steps], run.work)
        if run.group is not None and run.coordinator.abandoned:
            run.group.abandon()
        elif run.group is not None:
            run.group.flush()
        if not run.coordinator.abandoned:
            run.sized(None)  # what follows the steps (the view switch) is no step's
    result = run.result(finished)
    result.seconds = time.perf_counter() - started
    run.notify(RunFinished(result, result.status))
    return result


class _Run:
    """One run's state, which the runner's callbacks share: what each asset reads from, the logs,
    the retries not yet recorded, the assets that failed."""

    def __init__(
        self,
        plan: Plan,
        engine: Engine | None,
        sources: Callable[[str], Source],
        history: RunHistory,
        run_id: int,
        pointers: Mapping[str, str],
        listener: Listener | None,
        python_model: PythonRunner | None,
        options: RunOptions,
    ) -> None:
        self.plan, self.engine, self.sources, self.history = plan, engine, sources, history
        self.run_id, self.pointers, self.python_model, self.options = run_id, pointers, python_model, options
        self.notify: Listener = listener or (lambda event: None)
        self.run_time = datetime.now(UTC)
        self.serving = dict(pointers)  # what each asset reads from: the environment, then this run's tables
        self.steps = {step.name: step for step in plan.steps}
        self.order = {step.name: index for index, step in enumerate(plan.steps)}
        self.logs = StepLogs(run_id)
        self.began: dict[str, str] = {}
        self.retried: list[StepRecord] = []
        self.failed: set[str] = set()  # assets that failed or did not run in this run
        self.concurrent = engine is not None and engine.SUPPORTS_CONCURRENT_WRITES
        # An engine that sizes itself by step learns each step's input rows before it runs.
        self.sizes = (
            InputSizes(engine, lambda name: step.asset if (step := self.steps.get(name)) else None)
            if isinstance(engine, SizedSteps) and not self.concurrent
            else None
        )
        # Steps that take turns on the engine share commits (see runtime/run/commit_groups.py).
        self.group = (
            CommitGroup(
                engine,
                self.build,
                lambda: self.coordinator.cancelled is not None,
            )
            if isinstance(engine, Transactions) and not self.concurrent
            else None
        )
        self.coordinator = Runner(
            threads=options.threads,
            pools={ENGINE_POOL: 1, **{name: 1 for name in _source_names(plan)}, **options.pools},
            retry=options.retry,
            timeout=options.timeout,
            interrupt=self.interrupt,
            on_start=self.on_start,
            on_retry=self.on_retry,
            on_finish=self.on_finish,
            on_batch=self.on_batch,
            on_stop=lambda reason, running: self.notify(RunStopping(run_id, reason, tuple(running))),
            grace=options.grace,
            poll=lambda: history.runs.cancel_requested(run_id),
        )

    def build(self, step: Step, grouped: bool = False) -> StepResult:
        if self.sizes is not None:
            self.sized(self.sizes.rows(step, self.serving))
        outcome = build_step(step, self.context(step), group=grouped)
        if self.sizes is not None and outcome.status == "success":
            self.sizes.built(step, outcome.rows)
        return outcome

    def sized(self, rows: int | None) -> None:
        if self.sizes is not None and isinstance(self.engine, SizedSteps):
            self.engine.expect_rows(rows)

    def context(self, step: Step) -> StepContext:
        assert self.engine is not None, "a plan that builds needs an engine"
        return StepContext(
            self.engine,
            self.sources,
            self.history,
            self.run_id,
            self.run_time,
            self.serving,
            self.python_model,
            self.plan.env,
            self.options.metrics,
            self.options.samples,
            lambda: self.coordinator.stopping(step.name),
            frozenset(self.failed),
        )

    def task(self, step: Step) -> Task:
        pools: tuple[str, ...] = ()
        if step.action == "build":
            pools = () if self.concurrent else (ENGINE_POOL,)
            if step.asset.source is not None:
                pools += (step.asset.source.name,)
        # What its checks read (``after``) only has to be finished: a failure there skips those
        # checks, not the step.
        return Task(
            step.name,
            step.asset.upstream,
            pools,
            self.options.step_timeout,
            inline=step.action != "build",
            after=step.asset.after,
        )

    def work(self, task: Task, attempt: int) -> StepResult:
        step, logs = self.steps[task.name], self.logs
        if step.action == "skip":
            return StepResult(step.name, step.asset.kind, "skip", "skipped", step.reason)
        if step.action == "switch":
            outcome = StepResult(step.name, step.asset.kind, "switch", "switched", step.reason)
        else:
            verb = "loading from " + step.asset.source.name if step.asset.source else "building"
            logs.note(step.name, attempt, f"{verb} ({step.reason}) into {step.physical}")
            with logs.capture(step.name, attempt):
                group = self.group
                outcome = group.run(step) if group is not None else self.build(step)
            outcome = replace(outcome, attempts=attempt)
            logs.note(
                step.name, attempt, describe(outcome), "INFO" if outcome.status == "success" else "ERROR"
            )
            if outcome.status != "success":
                return outcome
        self.serving[step.name] = step.physical
        return outcome

    def on_start(self, task: Task, attempt: int) -> None:
        step = self.steps[task.name]
        if step.action == "build":
            self.began[task.name] = _now()
            self.notify(StepStarted(step.name, step.asset.kind, step.reason, attempt))

    def on_retry(self, task: Task, attempt: int, error: BaseException, delay: float) -> None:
        step, message = self.steps[task.name], _message(error)
        self.logs.note(
            task.name, attempt, f"attempt {attempt} failed ({message}); retrying in {delay:.1f}s", "WARNING"
        )
        self.retried.append(
            StepRecord(
                step.name,
                step.asset.kind,
                "build",
                "failed",
                step.reason,
                step.fingerprint,
                error=message,
                attempt=attempt,
                started_at=self.began.get(task.name),
            )
        )
        self.notify(StepRetrying(step.name, attempt, message, delay))

    def outcome_of(self, finished: Finished) -> StepResult:
        step = self.steps[finished.task]
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

    def on_finish(self, finished: Finished) -> None:
        outcome = self.outcome_of(finished)
        finished.value = outcome
        if outcome.status not in ("success", "switched", "skipped"):
            self.failed.add(outcome.asset)
        if isinstance(finished.error, StepTimeout | RunCancelled) and outcome.asset in self.began:
            self.logs.note(outcome.asset, outcome.attempts, f"{outcome.status}: {outcome.error}", "ERROR")
        self.notify(StepFinished(outcome))

    def on_batch(self, batch: list[Finished]) -> None:
        records, checks, metrics = list(self.retried), [], []
        self.retried.clear()
        for finished in batch:
            outcome = finished.value
            assert isinstance(outcome, StepResult)
            records.append(step_record(outcome, self.steps[finished.task], self.began.get(finished.task)))
            checks += check_records(outcome.checks, self.run_id, self.plan.env)
            metrics += list(outcome.metrics)
        self.history.runs.record_steps(self.run_id, records, checks, metrics, self.logs.take())

    def interrupt(self, name: str) -> None:
        """Stop what a step runs: the engine's statement, and a source's own reader (a file or S3
        read stuck in the source's DuckDB never reaches the engine)."""
        if isinstance(self.engine, Interruptible):
            self.engine.interrupt()
        source = self.steps[name].asset.source
        if source is not None and self.steps[name].action == "build":
            try:
                reader = self.sources(source.name)
                if isinstance(reader, InterruptibleSource):
                    reader.interrupt()
            except Exception as err:  # stopping must not fail the coordinator
                _log.warning("could not interrupt source %s: %s", source.name, err)

    def result(self, finished: Mapping[str, Finished]) -> RunResult:
        """The run's outcome once the runner is done; switches the environment's views to what
        succeeded, in one transaction."""
        steps, group = self.steps, self.group
        result = RunResult(self.run_id)
        outcomes = sorted((f.value for f in finished.values()), key=lambda o: self.order[o.asset])
        if group is not None and group.corrections:
            # Reported successful, then rolled back with a failing group-mate and not rebuilt.
            fixed = [group.corrections.get(o.asset, o) for o in outcomes]
            redone = [o for o in fixed if o.asset in group.corrections]
            self.history.runs.record_steps(
                self.run_id,
                [step_record(o, steps[o.asset], self.began.get(o.asset)) for o in redone],
                [],
            )
            for outcome in redone:
                self.notify(StepFinished(outcome))
            outcomes = fixed
        result.steps.extend(outcomes)
        result.cancelled = self.coordinator.cancelled
        result.abandoned = tuple(self.coordinator.abandoned)
        switched = {
            o.asset: steps[o.asset].physical
            for o in outcomes
            if o.status in ("success", "switched")
            and steps[o.asset].asset.kind != "source"
            and self.pointers.get(o.asset) != steps[o.asset].physical
        }
        if result.abandoned:
            # A step still holds the engine session (stuck in a statement or in user code): it must not
            # be used again. What succeeded stays built and recorded; the next run switches to it.
            switched = {}
        elif switched or self.plan.removed:
            assert self.engine is not None, "a plan that switches needs an engine"
            with require_transactions(self.engine, "switching an environment's views together").transaction():
                switch(self.engine, self.plan.env, switched, self.plan.removed, self.run_id)
        return result


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
