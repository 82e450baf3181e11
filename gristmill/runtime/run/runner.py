"""Run a graph of tasks: in parallel threads, in dependency order, within a global limit and
named pools, with retries, timeouts and cancellation.

One coordinating thread (the caller's) owns every decision: it starts ready tasks, collects
what finished, schedules retries and enforces deadlines. Workers only run a task's work, so
the bookkeeping needs no locks and costs microseconds per task. A task's work cannot be killed
from outside (threads cannot be); on a timeout or a cancel the runner asks the work to stop
through ``interrupt`` (the engine aborts its statement and rolls back) and by raising
``StepStopped`` in user Python code (see ``stopping``), and waits for it — at most ``grace``
seconds. Work that has not stopped by then is abandoned: recorded as cancelled or timed out, its
result ignored whenever it comes, and the run stops (the engine session it holds is unusable), so
a run always ends, whatever its work is stuck in."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gristmill._util.dag import topological_order
from gristmill.errors import RunCancelled, StepTimeout, Transient
from gristmill.runtime.run import stopping

_T = TypeVar("_T")


@dataclass(frozen=True)
class Task:
    name: str
    upstream: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    """Named pools this task takes a slot in while it runs (``engine``, a source's name)."""
    timeout: float | None = None
    """Seconds per attempt."""
    inline: bool = False
    """Instant bookkeeping work: run on the coordinating thread, no worker, no timeout."""
    after: tuple[str, ...] = ()
    """Tasks that must have finished first, whatever their outcome (a check reads them): their
    failure does not block this one."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 0
    """Extra attempts after a transient failure."""
    delay: float = 5.0
    max_delay: float = 300.0

    def wait(self, failed_attempt: int) -> float:
        """Exponential backoff with jitter: about ``delay * 2^(n-1)``, between half and all of it,
        so retries of many tasks that failed together do not arrive together."""
        ceiling = min(self.max_delay, self.delay * 2 ** (failed_attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retrying(call: Callable[[], _T], retry: Retry) -> _T:
    """``call()``, again after a transient failure, as a step would be (for work outside steps,
    such as reading a source's schema while planning)."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as err:
            if not isinstance(err, Transient) or attempt > retry.attempts:
                raise
            time.sleep(retry.wait(attempt))
            attempt += 1


@dataclass
class Finished:
    task: str
    status: str
    """success | failed | upstream_failed | cancelled"""
    value: Any = None
    error: BaseException | None = None
    attempts: int = 0
    seconds: float = 0.0
    """Of the last attempt."""
    started: float = 0.0
    finished: float = 0.0
    blocked_by: tuple[str, ...] = ()
    """For upstream_failed: the failed tasks upstream."""


@dataclass
class _Running:
    task: Task
    attempt: int
    started: float
    deadline: float | None
    stopped: str | None = None  # why the coordinator asked it to stop
    stopped_at: float | None = None
    thread: threading.Thread | None = None


@dataclass
class _Plan:
    tasks: dict[str, Task]
    children: dict[str, list[str]] = field(default_factory=dict)
    followers: dict[str, list[str]] = field(default_factory=dict)
    """Tasks that only wait for a task to finish (``Task.after``)."""
    waiting_on: dict[str, int] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        *,
        threads: int = 4,
        pools: Mapping[str, int] | None = None,
        retry: Retry = Retry(),
        timeout: float | None = None,
        retryable: Callable[[BaseException], bool] = lambda err: isinstance(err, Transient),
        interrupt: Callable[[str], None] | None = None,
        on_start: Callable[[Task, int], None] | None = None,
        on_retry: Callable[[Task, int, BaseException, float], None] | None = None,
        on_finish: Callable[[Finished], None] | None = None,
        on_batch: Callable[[list[Finished]], None] | None = None,
        on_stop: Callable[[str, list[str]], None] | None = None,
        batch_seconds: float = 0.05,
        grace: float = 10.0,
        poll: Callable[[], str | None] | None = None,
    ) -> None:
        """``on_stop(reason, running)``: the run started stopping (a cancel, its time limit), told
        once, after the running tasks were asked to stop. ``grace``: seconds a stopped task gets to
        end before it is abandoned. ``poll``: called a few times a second, returns a reason when
        the run should be cancelled (a cancel recorded by another process)."""
        self.threads = threads
        self.pools = dict(pools or {})
        self.retry = retry
        self.timeout = timeout
        self._retryable = retryable
        self._interrupt = interrupt or (lambda name: None)
        self._on_start = on_start
        self._on_retry = on_retry
        self._on_finish = on_finish
        self._on_batch = on_batch
        self._on_stop = on_stop
        self._batch_seconds = batch_seconds
        self.grace = grace
        self._poll = poll
        self.abandoned: list[str] = []
        """Tasks that did not stop within the grace period; their work may still be running."""
        self._stopping: set[str] = set()
        self._done: queue.SimpleQueue[tuple[str, int, Any, BaseException | None, float]] = queue.SimpleQueue()
        self._cancel_reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop starting tasks and interrupt the running ones; safe from any thread."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._done.put(("", 0, None, None, 0.0))  # wake the coordinator

    @property
    def cancelled(self) -> str | None:
        """Why the run was cancelled, if it was."""
        return self._cancel_reason

    def stopping(self, name: str) -> bool:
        """Whether the running attempt of ``name`` was asked to stop; its work checks this before
        it commits, so nothing commits once the stop was decided (safe from any thread)."""
        return name in self._stopping

    def _stop(self, state: _Running, reason: str) -> None:
        state.stopped, state.stopped_at = reason, time.monotonic()
        self._stopping.add(state.task.name)
        self._interrupt(state.task.name)
        if state.thread is not None and state.thread.ident is not None:
            stopping.stop(state.thread.ident)

    def run(self, tasks: Sequence[Task], work: Callable[[Task, int], Any]) -> dict[str, Finished]:
        """Run every task once its upstream tasks succeeded; returns each task's outcome."""
        graph = _prepare(tasks)
        results: dict[str, Finished] = {}
        batch: list[Finished] = []
        last_flush = time.monotonic()
        ready: list[str] = sorted(
            (n for n, c in graph.waiting_on.items() if c == 0), key=graph.rank.__getitem__
        )
        delayed: list[tuple[float, str, int]] = []  # (due, task, attempt) retries waiting
        attempt_of: dict[str, int] = {}
        running: dict[str, _Running] = {}
        in_use: dict[str, int] = {}
        run_deadline = time.monotonic() + self.timeout if self.timeout else None
        interrupted = False

        def finish(outcome: Finished) -> None:
            results[outcome.task] = outcome
            batch.append(outcome)
            if self._on_finish:
                self._on_finish(outcome)
            released = list(graph.followers[outcome.task])
            if outcome.status == "success":
                released += graph.children[outcome.task]
            else:
                self._block_descendants(graph, outcome, results, finish)
            for child in released:
                graph.waiting_on[child] -= 1
                if graph.waiting_on[child] == 0 and child not in results:
                    ready.append(child)
            ready.sort(key=graph.rank.__getitem__)

        def fits(task: Task) -> bool:
            return all(in_use.get(p, 0) < self.pools.get(p, 1_000_000) for p in task.pools)

        def launch(task: Task, attempt: int) -> None:
            now = time.monotonic()
            if self._on_start:
                self._on_start(task, attempt)
            if task.inline:
                try:
                    value, error = work(task, attempt), None
                except Exception as err:  # the work's own failure, reported as the task's
                    value, error = None, err
                self._done.put((task.name, attempt, value, error, now))
                running[task.name] = _Running(task, attempt, now, None)
                return
            for pool in task.pools:
                in_use[pool] = in_use.get(pool, 0) + 1
            deadline = now + task.timeout if task.timeout else None
            self._stopping.discard(task.name)
            thread = threading.Thread(
                target=self._attempt, args=(work, task, attempt, now), name=f"step {task.name}", daemon=True
            )
            running[task.name] = _Running(task, attempt, now, deadline, thread=thread)
            thread.start()

        stop_told = False
        next_poll = 0.0

        while ready or delayed or running:
            if self._poll is not None and self._cancel_reason is None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + 0.2
                requested = self._poll()
                if requested:
                    self.cancel(requested)
            if self._cancel_reason is None:
                now = time.monotonic()
                for retry in [d for d in delayed if d[0] <= now]:
                    delayed.remove(retry)
                    attempt_of[retry[1]] = retry[2]
                    ready.insert(0, retry[1])  # a retry goes first: its descendants wait on it
                index = 0
                while index < len(ready) and self._slots(running) < self.threads:
                    task = graph.tasks[ready[index]]
                    if fits(task):
                        ready.pop(index)
                        launch(task, attempt_of.get(task.name, 1))
                    else:
                        index += 1
            else:
                for name in list(ready) + [d[1] for d in delayed]:
                    if name not in results:
                        finish(Finished(name, "cancelled", error=RunCancelled(self._cancel_reason)))
                ready.clear()
                delayed.clear()
                for state in running.values():
                    if state.stopped is None:
                        self._stop(state, self._cancel_reason)
                if not stop_told:
                    stop_told = True
                    if self._on_stop:
                        self._on_stop(self._cancel_reason, sorted(running))
                if not running:
                    break
            if batch and time.monotonic() - last_flush >= self._batch_seconds:
                self._flush(batch)
                last_flush = time.monotonic()
            wait = self._next_wake(running, delayed, run_deadline, bool(batch))
            # Stay responsive to Ctrl-C and to a cancel recorded by another process.
            wait = min(0.5 if wait is None else wait, 0.25 if self._poll is not None else 0.5)
            try:
                message = (
                    self._done.get(timeout=wait) if wait is None or wait > 0 else self._done.get_nowait()
                )
            except queue.Empty:
                message = None
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                self.cancel("cancelled (interrupted)")
                continue
            now = time.monotonic()
            if run_deadline is not None and now >= run_deadline and self._cancel_reason is None:
                self.cancel(f"the run's time limit ({_seconds(self.timeout)}) passed")
            for state in running.values():
                if state.deadline is not None and now >= state.deadline and state.stopped is None:
                    self._stop(state, f"timed out after {_seconds(state.task.timeout)}")
            for state in list(running.values()):
                if state.stopped_at is not None and now >= state.stopped_at + self.grace:
                    self._abandon(state, running, finish)
            while message is not None:
                name, attempt, value, error, started = message
                current = running.get(name)
                if name and current is not None and current.attempt == attempt:  # not an abandoned one
                    self._settle(
                        graph, running, in_use, name, attempt, value, error, started, delayed, finish
                    )
                try:
                    message = self._done.get_nowait()
                except queue.Empty:
                    message = None
        self._flush(batch)
        return results

    def _attempt(self, work: Callable[[Task, int], Any], task: Task, attempt: int, started: float) -> None:
        try:
            value, error = work(task, attempt), None
        except BaseException as err:  # reported to the coordinator, which decides
            value, error = None, err
        finally:
            stopping.forget(threading.get_ident())
        self._done.put((task.name, attempt, value, error, started))

    def _abandon(
        self, state: _Running, running: dict[str, _Running], finish: Callable[[Finished], None]
    ) -> None:
        """A stopped task that did not end within the grace period: record it and move on. Its
        work may go on in its thread, but it cannot commit (``stopping``), and the engine session
        it holds cannot be used again, so the rest of the run stops too."""
        name = state.task.name
        running.pop(name)
        self.abandoned.append(name)
        note = (
            f"; it did not stop within {_seconds(self.grace)} of being asked, so the run abandoned it "
            "(nothing it wrote is committed)"
        )
        error: BaseException = (
            StepTimeout(f"{name} {state.stopped}{note}", hint="raise the step's timeout, or make it faster")
            if state.stopped and state.stopped.startswith("timed out")
            else RunCancelled(f"{state.stopped}{note}")
        )
        now = time.monotonic()
        status = "cancelled" if isinstance(error, RunCancelled) else "failed"
        finish(Finished(name, status, None, error, state.attempt, now - state.started, state.started, now))
        if self._cancel_reason is None:
            self.cancel(f"{name} could not be stopped, so the run stops")

    def _settle(
        self,
        graph: _Plan,
        running: dict[str, _Running],
        in_use: dict[str, int],
        name: str,
        attempt: int,
        value: Any,
        error: BaseException | None,
        started: float,
        delayed: list[tuple[float, str, int]],
        finish: Callable[[Finished], None],
    ) -> None:
        state = running.pop(name)
        task = state.task
        if not task.inline:
            for pool in task.pools:
                in_use[pool] -= 1
        now = time.monotonic()
        if state.stopped is not None and (error is not None or _is_failure(value)):
            error = (
                StepTimeout(f"{name} {state.stopped}", hint="raise the step's timeout, or make it faster")
                if state.stopped.startswith("timed out")
                else RunCancelled(state.stopped)
            )
        failure = error if error is not None else _is_failure(value)
        if failure is None:
            finish(Finished(name, "success", value, None, attempt, now - started, started, now))
            return
        assert isinstance(failure, BaseException)
        can_retry = (
            self._cancel_reason is None
            and attempt <= self.retry.attempts
            and isinstance(failure, Exception)
            and self._retryable(failure)
        )
        if can_retry:
            delay = self.retry.wait(attempt)
            if self._on_retry:
                self._on_retry(task, attempt, failure, delay)
            delayed.append((now + delay, name, attempt + 1))
            return
        status = "cancelled" if isinstance(failure, RunCancelled) else "failed"
        finish(Finished(name, status, value, failure, attempt, now - started, started, now))

    def _block_descendants(
        self,
        graph: _Plan,
        outcome: Finished,
        results: dict[str, Finished],
        finish: Callable[[Finished], None],
    ) -> None:
        status = "cancelled" if outcome.status == "cancelled" else "upstream_failed"
        for child in graph.children[outcome.task]:
            if child in results:
                continue
            blocked = (
                (*outcome.blocked_by, outcome.task)
                if outcome.status == "upstream_failed"
                else (outcome.task,)
            )
            finish(
                Finished(
                    child, status, error=outcome.error if status == "cancelled" else None, blocked_by=blocked
                )
            )

    def _slots(self, running: dict[str, _Running]) -> int:
        return sum(1 for state in running.values() if not state.task.inline)

    def _next_wake(
        self,
        running: dict[str, _Running],
        delayed: list[tuple[float, str, int]],
        run_deadline: float | None,
        pending_batch: bool,
    ) -> float | None:
        moments = [s.deadline for s in running.values() if s.deadline is not None and s.stopped is None]
        moments += [s.stopped_at + self.grace for s in running.values() if s.stopped_at is not None]
        moments += [due for due, _, _ in delayed]
        if run_deadline is not None and self._cancel_reason is None:
            moments.append(run_deadline)
        if pending_batch:
            moments.append(time.monotonic() + self._batch_seconds)
        if not moments:
            return None
        return max(0.0, min(moments) - time.monotonic())

    def _flush(self, batch: list[Finished]) -> None:
        if batch and self._on_batch:
            self._on_batch(list(batch))
        batch.clear()


def _is_failure(value: Any) -> BaseException | None:
    """A work function may return its failure instead of raising it (``value.failure``)."""
    failure = getattr(value, "failure", None)
    return failure if isinstance(failure, BaseException) else None


def _prepare(tasks: Sequence[Task]) -> _Plan:
    by_name = {t.name: t for t in tasks}
    graph = _Plan(
        by_name,
        {name: [] for name in by_name},
        {name: [] for name in by_name},
        {name: 0 for name in by_name},
    )
    for task in tasks:
        for parent in set(task.upstream):
            if parent in by_name:
                graph.children[parent].append(task.name)
                graph.waiting_on[task.name] += 1
        for parent in set(task.after) - set(task.upstream):
            if parent in by_name:
                graph.followers[parent].append(task.name)
                graph.waiting_on[task.name] += 1
    # Longest path to the end first: the critical path decides when the run ends.
    depth: dict[str, int] = {}
    dependencies = {t.name: [p for p in (*t.upstream, *t.after) if p in by_name] for t in tasks}
    for name in reversed(topological_order(dependencies)):
        depth[name] = 1 + max((depth[c] for c in (*graph.children[name], *graph.followers[name])), default=0)
    order = sorted(by_name, key=lambda n: (-depth[n], n))
    graph.rank = {name: index for index, name in enumerate(order)}
    return graph


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}s" if value < 120 else f"{value / 60:g}m"
