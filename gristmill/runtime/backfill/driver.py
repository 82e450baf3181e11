"""Drive a backfill: a run per chunk of partitions, each partition's outcome kept in the history
so that a backfill that failed, was cancelled or died is resumed where it stopped.

One process per backfill: its lock file is released by the OS if the process dies, which is how a
listing tells a running backfill from an interrupted one."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from gristmill.errors import ConcurrentRunError, ConfigError, GristmillError
from gristmill.plan import AssetGraph, select
from gristmill.plan.intervals import Span, parse_moment
from gristmill.runtime import launch, planning
from gristmill.runtime.backfill.request import BackfillRequest
from gristmill.runtime.backfill.result import BackfillResult
from gristmill.runtime.backfill.scope import Scope, check_options, check_range, scope_of
from gristmill.runtime.planning import PlanRequest
from gristmill.runtime.run.events import Listener
from gristmill.runtime.run.executor import RunResult
from gristmill.runtime.run.lock import run_lock
from gristmill.runtime.run.runner import Runner
from gristmill.runtime.session import Session
from gristmill.state import RunHistory
from gristmill.state.records import BackfillRecord

Row = tuple[str, str, str, int | None, str | None]
"""(asset, partition, status, run_id, error), as the history keeps a partition's outcome."""

_DONE = ("success", "switched", "skipped")


@dataclass(frozen=True)
class Ask:
    """A backfill as asked: a new one (``request`` and its range) or one to resume."""

    request: BackfillRequest
    start: datetime | None = None
    end: datetime | None = None
    resume: int | None = None
    wait: float = 0.0
    listener: Listener | None = None


def lock_path(session: Session, backfill_id: int) -> Path:
    return session.state_folder / "backfills" / f"{backfill_id}.lock"


def shown(record: BackfillRecord) -> BackfillRecord:
    """The record with its request as listings show it (the arguments that would start it)."""
    return replace(record, selection=BackfillRequest.stored(record.selection).describe())


def listing(session: Session, backfill_id: int | None, limit: int) -> list[BackfillResult]:
    """Recent backfills, newest first, or one with its partitions. A backfill whose process died
    shows as interrupted (it is resumed like a cancelled one)."""
    with session.history() as history:
        found = history.backfills.recent(backfill_id, limit)
        if backfill_id is not None and not found:
            raise GristmillError(
                f"no backfill {backfill_id} in this project's history",
                hint="`gristmill backfills` lists them",
            )
        results: list[BackfillResult] = []
        for record in found:
            if record.status == "running" and not _alive(lock_path(session, record.backfill_id)):
                record = replace(record, status="interrupted")
            partitions = history.backfills.partitions(record.backfill_id) if backfill_id is not None else []
            results.append(BackfillResult(shown(record), partitions))
        return results


def _alive(lock: Path) -> bool:
    if not lock.exists():
        return False
    try:
        with run_lock(lock):
            return False
    except ConcurrentRunError:
        return True


def backfill(session: Session, graph: AssetGraph, ask: Ask) -> BackfillResult:
    """Build the selected partitioned models for their partitions, a chunk of them per run, and
    keep each partition's outcome in the history: a backfill that failed, was cancelled or died is
    resumed (``ask.resume``: its id) where it stopped. Each chunk is a run of its own.

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
    check_options(ask.request.reprocess, ask.request.chunk)
    with session.history() as history:
        request, start, end, previous = ask.request, ask.start, ask.end, None
        if ask.resume is not None:
            listed = history.backfills.recent(ask.resume, 1)
            if not listed:
                raise GristmillError(
                    f"no backfill {ask.resume} in this project's history",
                    hint="`gristmill backfills` lists them",
                )
            previous = listed[0]
            stored = BackfillRequest.stored(previous.selection)
            request = replace(stored, chunk=request.chunk or stored.chunk, reprocess=request.reprocess)
            if previous.start and previous.end:
                start, end = parse_moment(previous.start), parse_moment(previous.end)
        span = check_range(graph, select(graph, request.selection), start, end)
        planned = planning.plan(session, graph, PlanRequest.of(request.selection, env=request.env))
        scope = scope_of(session, graph, planned, span, request.partitions)
        driver = _Driver(session, history, scope, request, ask)
        if previous is None:
            driver.start(span)
        else:
            driver.backfill_id = previous.backfill_id
        driver.drive(previous is not None)
        record = history.backfills.recent(driver.backfill_id, 1)[0]
        return BackfillResult(shown(record), history.backfills.partitions(driver.backfill_id), driver.runs)


@dataclass
class _Driver:
    session: Session
    history: RunHistory
    scope: Scope
    request: BackfillRequest
    ask: Ask
    backfill_id: int = 0
    status: dict[tuple[str, str], str] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    restating: bool = False

    def start(self, span: tuple[datetime | None, datetime | None]) -> None:
        """Record a new backfill: its partitions pending, or skipped when the lake has them."""
        history, scope, reprocess = self.history, self.scope, self.request.reprocess
        failed_before = self._failed_before() if reprocess == "failed" else set()
        for name, own in scope.keys.items():
            for key in own:
                again = reprocess == "all" or key not in scope.built[name] or (name, key) in failed_before
                self.status[(name, key)] = "pending" if again else "skipped"
        low, high = span
        if not self.status:
            assert low is not None and high is not None
            raise _nothing_to_backfill(scope, low, high)
        self.backfill_id = history.backfills.start(
            self.request.to_json(),
            low.isoformat() if low else "",
            high.isoformat() if high else "",
            list(self.status),
        )
        skipped: list[Row] = [
            (a, p, "skipped", None, None) for (a, p), s in self.status.items() if s == "skipped"
        ]
        if skipped:
            history.backfills.set_partitions(self.backfill_id, skipped)

    def _failed_before(self) -> set[tuple[str, str]]:
        """Partitions whose latest outcome in any earlier backfill was a failure."""
        latest: dict[tuple[str, str], str] = {}
        for old in sorted(self.history.backfills.recent(limit=1_000_000), key=lambda r: r.backfill_id):
            for part in self.history.backfills.partitions(old.backfill_id):
                if part.status in ("success", "failed"):
                    latest[(part.asset, part.partition)] = part.status
        return {key for key, last in latest.items() if last == "failed"}

    def drive(self, resumed: bool) -> None:
        lock = lock_path(self.session, self.backfill_id)
        held = ExitStack()
        try:
            held.enter_context(run_lock(lock))
        except ConcurrentRunError:
            raise GristmillError(
                f"backfill {self.backfill_id} is running in another process",
                hint="wait for it to end, or stop it (Ctrl-C) and resume it then",
            ) from None
        with held:
            try:
                if resumed:
                    self._reopen()
                self.restating = self.request.reprocess != "missing" or resumed
                started = resumed or any(state == "pending" for state in self.status.values())
                outcome = self._chunks()
                if outcome == "success" and any(state == "failed" for state in self.status.values()):
                    outcome = "failed"
                last = self.scope.last()
                if outcome == "success" and last and started:
                    final = self._run(last)
                    outcome = "cancelled" if self.stops else final.status
                self.history.backfills.finish(self.backfill_id, outcome)
                if outcome == "success":
                    lock.unlink(missing_ok=True)
            except BaseException as err:
                self.history.backfills.finish(self.backfill_id, "cancelled")
                _reraise(err)

    def _reopen(self) -> None:
        """What is left: partitions pending or failed, and any the lake no longer has (a changed
        model builds a new version, empty until filled)."""
        again: list[Row] = []
        for part in self.history.backfills.partitions(self.backfill_id):
            if part.partition not in self.scope.keys.get(part.asset, {}):
                continue
            state = part.status
            if state in ("pending", "failed") or part.partition not in self.scope.built[part.asset]:
                state = "pending"
                if part.status != "pending":
                    again.append((part.asset, part.partition, state, None, None))
            self.status[(part.asset, part.partition)] = state
        if again:
            self.history.backfills.set_partitions(self.backfill_id, again)
        self.history.backfills.finish(self.backfill_id, "running")

    def _chunks(self) -> str:
        """Run every partitioned model's pending partitions, a chunk per run; the outcome."""
        scope, units = self.scope, self.scope.units
        feeding = scope.feeding()
        queue = list(units)
        while queue:
            name = queue.pop(0)
            todo = self._pending(name)
            # Neighbours of one unit with the same partitions to do share each chunk's run.
            group = [name]
            while queue and units[queue[0]] == units[name] and self._pending(queue[0]) == todo:
                group.append(queue.pop(0))
            upstream = [n for n in feeding if any(n in scope.upstream_of(g) for g in group)]
            for piece in scope.chunks(name, todo, self.request.chunk):
                if units[name] == "value":
                    result = self._run([*upstream, *group], values=piece)
                else:
                    opening, closing = scope.keys[name][piece[0]], scope.keys[name][piece[-1]]
                    assert opening is not None and closing is not None
                    result = self._run([*upstream, *group], (opening[0], closing[1]))
                self._note(result, group, piece)
                by_asset = {s.asset: s for s in result.steps}
                unloaded = [n for n in upstream if by_asset.get(n) is None or by_asset[n].status not in _DONE]
                if result.status == "cancelled" or self.stops:
                    return "cancelled"
                if unloaded:  # what the models read did not build: later chunks would fail alike
                    return "failed"
        return "success"

    def _note(self, result: RunResult, group: Sequence[str], piece: Sequence[str]) -> None:
        """Keep each partition's outcome in this chunk's run."""
        by_asset = {s.asset: s for s in result.steps}
        rows: list[Row] = []
        for asset in group:
            step = by_asset.get(asset)
            error: str | None = None
            if step is not None and step.status == "cancelled":
                state = "pending"  # rolled back: left for the resume
            elif step is not None and step.status in _DONE:
                state = "success"
            else:
                state = "failed"
                error = (step.error or step.reason) if step is not None else "not run"
            for key in piece:
                self.status[(asset, key)] = state
                rows.append((asset, key, state, result.run_id, error))
        self.history.backfills.set_partitions(self.backfill_id, rows)

    def _pending(self, name: str) -> list[str]:
        """The asset's pending partitions; those reading a partition that failed upstream in this
        backfill fail without running."""
        scope = self.scope
        broken = [
            (asset, key)
            for (asset, key), state in self.status.items()
            if state == "failed" and asset in scope.upstream_of(name) and key in scope.keys.get(asset, {})
        ]
        todo: list[str] = []
        blocked: list[Row] = []
        for key in scope.keys[name]:
            if self.status.get((name, key)) != "pending":
                continue
            cause = next((a for a, k in broken if scope.overlaps(name, key, a, k)), None)
            if cause is None:
                todo.append(key)
            else:
                self.status[(name, key)] = "failed"
                blocked.append((name, key, "failed", None, f"not run: {cause} failed here"))
        if blocked:
            self.history.backfills.set_partitions(self.backfill_id, blocked)
        return todo

    def _run(
        self, chosen: list[str], window: Span | None = None, values: list[str] | None = None
    ) -> RunResult:
        # Another run (a schedule) may take the project between two chunks: wait for it rather
        # than abandon the backfill.
        restate = window if window is not None and self.restating else None
        request = PlanRequest.of(
            chosen, env=self.request.env, restate=restate, window=window, partitions=values
        )
        job = launch.Job(f"backfill {self.backfill_id}", self.ask.listener, self._watch)
        wait = max(self.ask.wait, 600.0) if self.runs else self.ask.wait
        result = launch.run(self.session, self.scope.graph, request, job, wait)
        self.runs.append(result)
        return result

    def _watch(self, coordinator: Runner) -> None:
        """Note a cancellation (Ctrl-C, `gristmill cancel`): a run whose steps end well before
        they notice it still succeeds, yet the backfill stops after it."""
        cancel = coordinator.cancel

        def noted(reason: str = "cancelled") -> None:
            self.stops.append(reason)
            cancel(reason)

        coordinator.cancel = noted  # type: ignore[method-assign]


def _nothing_to_backfill(scope: Scope, low: datetime, high: datetime) -> ConfigError:
    return ConfigError(
        f"nothing to backfill: no interval of {', '.join(scope.keys)} starts between "
        f"{low.isoformat()} and {high.isoformat()} and is over",
        hint="intervals begin at a model's `start:`; the one still running is left to runs",
    )


def _reraise(err: BaseException) -> None:
    """Raise ``err`` again; as a KeyboardInterrupt when one caused it (DuckDB reports Ctrl-C
    during a call, opening the lake, as an error of its own)."""
    cause: BaseException | None = err
    for _ in range(8):
        if cause is None or isinstance(cause, KeyboardInterrupt):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, KeyboardInterrupt) and cause is not err:
        raise KeyboardInterrupt from err
    raise err
