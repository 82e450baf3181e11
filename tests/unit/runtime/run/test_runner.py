"""The task runner: order, parallelism, pools, retries, timeouts, cancellation."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from gristmill.errors import EngineError, RunCancelled, StepTimeout, TransientSourceError
from gristmill.runtime.run.runner import Finished, Retry, Runner, Task


class Gauge:
    """How many works run at once, per pool, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def __call__(self, key: str, pause: float = 0.05) -> None:
        with self.lock:
            self.now[key] += 1
            self.peak[key] = max(self.peak[key], self.now[key])
        time.sleep(pause)
        with self.lock:
            self.now[key] -= 1


def braided(layers: int, width: int) -> list[Task]:
    tasks = []
    for layer in range(layers):
        for i in range(width):
            up = () if layer == 0 else tuple(f"{layer - 1}.{j % width}" for j in (i, i + 1, i + 3))
            tasks.append(Task(f"{layer}.{i}", up))
    return tasks


def test_every_task_runs_after_its_upstream_and_batches_carry_all() -> None:
    finished_at: dict[str, float] = {}
    batches: list[list[Finished]] = []
    lock = threading.Lock()

    def work(task: Task, attempt: int) -> str:
        with lock:
            for parent in task.upstream:
                assert parent in finished_at, f"{task.name} started before {parent} finished"
        time.sleep(0.001)
        with lock:
            finished_at[task.name] = time.monotonic()
        return task.name.upper()

    tasks = braided(6, 5)
    results = Runner(threads=4, on_batch=batches.append).run(tasks, work)
    assert {r.status for r in results.values()} == {"success"}
    assert results["5.4"].value == "5.4".upper()
    assert sorted(f.task for b in batches for f in b) == sorted(t.name for t in tasks)


def test_threads_and_pools_bound_concurrency() -> None:
    gauge = Gauge()
    tasks = [Task(f"db{i}", pools=("shopdb",)) for i in range(6)] + [Task(f"api{i}") for i in range(6)]

    def work(task: Task, attempt: int) -> None:
        with gauge.lock:
            gauge.now["all"] += 1
            gauge.peak["all"] = max(gauge.peak["all"], gauge.now["all"])
        gauge("shopdb" if task.pools else "other")
        with gauge.lock:
            gauge.now["all"] -= 1

    Runner(threads=3, pools={"shopdb": 2}).run(tasks, work)
    assert gauge.peak["shopdb"] == 2  # the pool's limit, reached and kept
    assert gauge.peak["all"] == 3  # the global limit


def test_a_failed_task_skips_its_descendants_and_names_the_cause() -> None:
    tasks = [Task("a"), Task("b", ("a",)), Task("c", ("b",)), Task("d")]

    def work(task: Task, attempt: int) -> None:
        if task.name == "a":
            raise EngineError("Binder Error: column x not found")

    results = Runner(retry=Retry(attempts=3, delay=0.01)).run(tasks, work)
    assert results["a"].status == "failed" and results["a"].attempts == 1  # terminal: never retried
    assert results["b"].status == "upstream_failed" and results["b"].blocked_by == ("a",)
    assert results["c"].status == "upstream_failed" and results["c"].blocked_by == ("a", "b")
    assert results["d"].status == "success"


def test_transient_failures_are_retried_with_backoff_then_succeed() -> None:
    calls: list[tuple[int, float]] = []
    retries: list[tuple[int, float]] = []

    def work(task: Task, attempt: int) -> str:
        calls.append((attempt, time.monotonic()))
        if task.name == "flaky" and attempt < 3:
            raise TransientSourceError("connection reset by peer")
        return "ok"

    runner = Runner(
        retry=Retry(attempts=3, delay=0.05, max_delay=1),
        on_retry=lambda task, attempt, err, delay: retries.append((attempt, delay)),
    )
    results = runner.run([Task("flaky"), Task("after", ("flaky",))], work)
    assert results["flaky"].status == "success" and results["flaky"].attempts == 3
    assert results["after"].status == "success"
    assert [a for a, _ in retries] == [1, 2]
    assert 0.025 <= retries[0][1] <= 0.05 and 0.05 <= retries[1][1] <= 0.1  # doubled, jittered
    assert calls[1][1] - calls[0][1] >= retries[0][1] * 0.9


def test_retries_give_up_after_the_limit() -> None:
    def work(task: Task, attempt: int) -> None:
        raise TransientSourceError("server busy")

    results = Runner(retry=Retry(attempts=2, delay=0.01)).run([Task("x")], work)
    assert results["x"].status == "failed" and results["x"].attempts == 3


def test_a_step_past_its_timeout_is_interrupted_and_fails() -> None:
    stop = threading.Event()

    def work(task: Task, attempt: int) -> None:
        if not stop.wait(5):
            return
        raise EngineError("INTERRUPT Error: Interrupted!")

    runner = Runner(interrupt=lambda name: stop.set())
    started = time.monotonic()
    results = runner.run([Task("slow", timeout=0.2), Task("child", ("slow",))], work)
    assert time.monotonic() - started < 4
    assert results["slow"].status == "failed"
    assert isinstance(results["slow"].error, StepTimeout)
    assert "timed out after 0.2s" in str(results["slow"].error)
    assert results["child"].status == "upstream_failed"


def test_cancel_interrupts_running_steps_and_starts_nothing_more() -> None:
    stop = threading.Event()
    started = threading.Event()

    def work(task: Task, attempt: int) -> None:
        started.set()
        if stop.wait(5):
            raise EngineError("INTERRUPT Error: Interrupted!")

    runner = Runner(threads=1, interrupt=lambda name: stop.set())
    threading.Thread(target=lambda: (started.wait(5), runner.cancel("cancelled by alice"))).start()
    results = runner.run([Task("a"), Task("b"), Task("c", ("a",))], work)
    assert {r.status for r in results.values()} == {"cancelled"}
    assert all(isinstance(r.error, RunCancelled) for r in results.values())
    assert "cancelled by alice" in str(results["a"].error)


def test_the_run_time_limit_cancels_what_is_left() -> None:
    stop = threading.Event()

    def work(task: Task, attempt: int) -> None:
        if task.name == "slow" and stop.wait(5):
            raise EngineError("INTERRUPT Error: Interrupted!")

    results = Runner(threads=1, timeout=0.2, interrupt=lambda name: stop.set()).run(
        [Task("fast"), Task("slow", ("fast",)), Task("later", ("slow",))], work
    )
    assert results["fast"].status == "success"
    assert results["slow"].status == "cancelled" and "time limit" in str(results["slow"].error)
    assert results["later"].status == "cancelled"


def test_inline_tasks_run_on_the_coordinator() -> None:
    names: list[str] = []
    tasks = [Task("a", inline=True), Task("b", ("a",))]
    results = Runner().run(tasks, lambda t, a: names.append(threading.current_thread().name))
    assert results["b"].status == "success"
    assert names[0] == threading.current_thread().name and names[1] == "step b"


@pytest.mark.parametrize("threads", [1, 4])
def test_200_braided_tasks_finish(threads: int) -> None:
    results = Runner(threads=threads).run(braided(20, 10), lambda t, a: None)
    assert len(results) == 200 and {r.status for r in results.values()} == {"success"}


def test_a_task_that_ignores_the_stop_is_abandoned_after_the_grace_period() -> None:
    """Work stuck where no interrupt reaches (here: a lock nobody releases) cannot keep the run."""
    stuck = threading.Event()
    stops: list[tuple[str, list[str]]] = []
    runner = Runner(threads=2, grace=0.3, on_stop=lambda reason, running: stops.append((reason, running)))

    def work(task: Task, attempt: int) -> str:
        if task.name == "stuck":
            stuck.wait(30)
        return task.name

    started = time.monotonic()
    threading.Timer(0.2, runner.cancel, args=("cancelled by test",)).start()
    results = runner.run([Task("stuck"), Task("after", ("stuck",))], work)
    assert time.monotonic() - started < 5
    assert runner.abandoned == ["stuck"]
    assert results["stuck"].status == "cancelled"
    assert "did not stop within 0.3s" in str(results["stuck"].error)
    assert results["after"].status == "cancelled"
    assert stops == [("cancelled by test", ["stuck"])]
    stuck.set()


def test_an_abandoned_timeout_stops_the_run() -> None:
    release = threading.Event()

    def work(task: Task, attempt: int) -> str:
        if task.name == "stuck":
            release.wait(30)
        else:
            time.sleep(2)
        return task.name

    runner = Runner(threads=2, grace=0.2)
    results = runner.run([Task("stuck", timeout=0.2), Task("other")], work)
    release.set()
    assert results["stuck"].status == "failed" and isinstance(results["stuck"].error, StepTimeout)
    assert results["other"].status == "cancelled"
    assert runner.cancelled == "stuck could not be stopped, so the run stops"


def test_a_stop_raises_inside_user_python_code() -> None:
    from gristmill.runtime.run.stopping import StepStopped, user_code

    seen: list[BaseException] = []

    def work(task: Task, attempt: int) -> str:
        try:
            with user_code():
                end = time.monotonic() + 30
                total = 0
                while time.monotonic() < end:  # pure Python: only an exception raised in it stops it
                    total += 1
        except StepStopped as err:
            seen.append(err)
            raise
        return "done"

    runner = Runner(threads=1, grace=10)
    threading.Timer(0.2, runner.cancel).start()
    started = time.monotonic()
    results = runner.run([Task("busy")], work)
    assert time.monotonic() - started < 5
    assert len(seen) == 1 and results["busy"].status == "cancelled" and not runner.abandoned


def test_after_waits_for_a_task_but_not_for_its_success() -> None:
    order: list[str] = []

    def work(task: Task, attempt: int) -> str:
        order.append(task.name)
        if task.name == "parent":
            raise EngineError("parent failed")
        return task.name

    results = Runner(threads=4).run([Task("checked", after=("parent",)), Task("parent")], work)
    assert order == ["parent", "checked"]
    assert results["checked"].status == "success" and results["parent"].status == "failed"


def test_a_polled_cancel_request_stops_the_run() -> None:
    asked = time.monotonic() + 0.3
    runner = Runner(threads=1, poll=lambda: "cancelled elsewhere" if time.monotonic() > asked else None)
    results = runner.run(
        [Task("a"), Task("b", ("a",))], lambda task, attempt: time.sleep(0.6 if task.name == "a" else 0)
    )
    assert runner.cancelled == "cancelled elsewhere"
    assert results["b"].status == "cancelled"
