"""Dagster's ``materialize()`` on the braided DAG (run by the Dagster venv's Python).

    python dagster_dag.py sqlite|memory LAYERS WIDTH

Builds one ``@asset`` per node with ``deps=`` (no data passes between them: each returns None,
so no IO manager stores anything), then times one ``materialize()`` call: ``sqlite`` on an
on-disk instance (``DAGSTER_HOME`` in a temporary folder, the SQLite run, event-log and schedule
storage ``dagster dev`` records to), ``memory`` on an ephemeral in-memory instance. Instance
creation and asset definition are outside the timing. Prints JSON: cpu_s (this process, all
threads, plus any child processes), wall_s, tasks (materializations recorded), version.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

# The DAG's shape, repeated here so this file needs nothing but Dagster (see dag.py).


def _name(layer: int, i: int) -> str:
    return f"l{layer:03d}_n{i:03d}"


def _parents(layer: int, i: int, width: int) -> tuple[int, ...]:
    if layer == 0:
        return ()
    offsets = (0, 1, 3) if (layer + i) % 2 == 0 else (0, 1)
    return tuple((i + d) % width for d in offsets)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    alive = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            alive += times.user + times.system
        except psutil.Error:
            pass
    return usage.ru_utime + usage.ru_stime + alive


def main() -> None:
    mode, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with tempfile.TemporaryDirectory() as home:
        if mode == "sqlite":
            os.environ["DAGSTER_HOME"] = home
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        import dagster as dg

        def define(node: str, upstream: list[str]) -> dg.AssetsDefinition:
            @dg.asset(name=node, deps=upstream)
            def _noop() -> None:
                return None

            return _noop

        assets = [
            define(_name(layer, i), [_name(layer - 1, p) for p in _parents(layer, i, width)])
            for layer in range(layers)
            for i in range(width)
        ]
        instance = dg.DagsterInstance.get() if mode == "sqlite" else dg.DagsterInstance.ephemeral()
        instance.get_runs(limit=1)  # storage opened (and, on disk, its schema created) before timing
        cpu, children, wall = time.process_time(), _children_cpu(), time.perf_counter()
        result = dg.materialize(assets, instance=instance)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu + _children_cpu() - children
        tasks = len(result.get_asset_materialization_events())
        stored = len(instance.get_runs())
        storage = type(instance.event_log_storage).__name__
        instance.dispose()
    answer = {
        "cpu_s": cpu,
        "wall_s": wall,
        "tasks": tasks if result.success else 0,
        "version": dg.__version__,
        "runs_stored": stored,
        "event_log": storage,
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
