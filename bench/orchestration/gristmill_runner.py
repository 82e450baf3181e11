"""Gristmill's task runner on the braided DAG with no-op work, against a plain graphlib loop
(run by the project venv's Python, one configuration per fresh process).

    PYTHONPATH=SNAPSHOT:REPO python gristmill_runner.py runner|floor|floor_history LAYERS WIDTH FOLDER

``runner``: ``gristmill.runtime.run.runner.Runner`` (4 threads, no pools, no retries) records each
batch of finished tasks as steps in a real ``SQLiteHistory`` (a file under ``FOLDER``), between
``start_run`` and ``finish_run``. ``floor``: ``graphlib.TopologicalSorter`` calling the same
no-op in dependency order on one thread, recording nothing. ``floor_history``: the floor plus the
same history writes, one ``record_steps`` per ready set. Opening the history (creating its
schema) is outside the timing. Prints JSON: cpu_s (process CPU, all threads), wall_s, tasks
(successful tasks, as recorded in the history when there is one).
"""

from __future__ import annotations

import graphlib
import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.orchestration.dag import nodes
from gristmill.state.history import SQLiteHistory
from gristmill.state.records import StepRecord


def noop(task: Any, attempt: int) -> None:
    return None


def _steps(names: list[tuple[str, str, int, float]]) -> list[StepRecord]:
    return [
        StepRecord(name, "model", "build", status, "bench", attempt=attempt, seconds=seconds)
        for name, status, attempt, seconds in names
    ]


def runner(graph: dict[str, tuple[str, ...]], history: SQLiteHistory) -> int:
    from gristmill.runtime.run.runner import Finished, Retry, Runner, Task  # already imported: see main()

    started = time.perf_counter()
    run_id = history.runs.start("run", "bench")

    def record(batch: list[Finished]) -> None:
        history.runs.record_steps(
            run_id, _steps([(f.task, f.status, f.attempts, f.seconds) for f in batch]), []
        )

    tasks = [Task(name, upstream=upstream) for name, upstream in graph.items()]
    results = Runner(threads=4, pools={}, retry=Retry(attempts=0), on_batch=record).run(tasks, noop)
    history.runs.finish(run_id, "success", time.perf_counter() - started, {})
    return sum(1 for f in results.values() if f.status == "success")


def floor(graph: dict[str, tuple[str, ...]], history: SQLiteHistory | None) -> int:
    started = time.perf_counter()
    run_id = history.runs.start("run", "bench") if history else 0
    order = graphlib.TopologicalSorter(graph)
    order.prepare()
    done = 0
    while order.is_active():
        batch = []
        for name in order.get_ready():
            begun = time.perf_counter()
            noop(name, 1)
            batch.append((name, "success", 1, time.perf_counter() - begun))
            order.done(name)
        done += len(batch)
        if history:
            history.runs.record_steps(run_id, _steps(batch), [])
    if history:
        history.runs.finish(run_id, "success", time.perf_counter() - started, {})
    return done


def main() -> None:
    mode, layers, width, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    graph = nodes(layers, width)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        history = SQLiteHistory(Path(tmp) / "state.sqlite") if mode != "floor" else None
        measured: dict[str, Callable[[], int]] = {
            "runner": lambda: runner(graph, history) if history else 0,
            "floor": lambda: floor(graph, None),
            "floor_history": lambda: floor(graph, history),
        }
        if mode == "runner":
            importlib.import_module("gristmill.runtime.run.runner")  # imported before the clock starts
        cpu, wall = time.process_time(), time.perf_counter()
        tasks = measured[mode]()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if history:
            run = history.runs.recent(1)[0]
            tasks = sum(1 for s in history.runs.steps(run.run_id) if s.status == "success")
            history.close()
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "tasks": tasks}))


if __name__ == "__main__":
    main()
