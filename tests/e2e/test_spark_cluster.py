"""A spark target on a standalone cluster started on loopback (a master, two one-core workers):
tasks run in executors outside the driver's process, and a job survives a worker killed -9 in the
middle of it (Spark runs the lost tasks again on the other worker; nothing lost, nothing doubled).
The driver runs in a process of its own (tests/support/spark_client.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.spark_servers import StandaloneCluster, standalone_cluster, started

REPO = Path(__file__).parents[2]
PARTITIONS, ROWS_EACH, SECONDS_EACH = 10, 10, 3.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    with started(standalone_cluster(tmp_path_factory.mktemp("standalone"))) as running:
        yield running


def test_tasks_run_on_the_workers_and_a_job_survives_a_killed_worker(
    tmp_path: Path, cluster: StandaloneCluster
) -> None:
    engine = {
        "kind": "spark",
        "master": cluster.url,
        # Executors must fit the workers' memory; their Python workers run this interpreter.
        "conf": {"spark.executor.memory": "512m", "spark.pyspark.python": sys.executable},
    }
    request: dict[str, Any] = {"engine": engine, "root": str(tmp_path), "action": "cluster"}
    request |= {"partitions": PARTITIONS, "sleep": SECONDS_EACH}
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.support.spark_client", json.dumps(request)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"SPARK_LOCAL_IP": "127.0.0.1"},
    )
    try:
        lines = _lines_until(driver, "long job")
        first = next(line for line in lines if line.get("progress") == "first job")
        workers = {worker.popen.pid for worker in cluster.workers}
        # Each task ran in a worker's session (its executor's Python worker), none in the driver's.
        ran_in = {session for _, session, _ in first["sessions"]}
        assert ran_in <= workers and first["driver_session"] not in ran_in, (ran_in, workers)
        assert first["executors"] == 2
        app = _running_app(cluster)
        assert app["cores"] == 2 and app["state"] == "RUNNING"

        # Kill one worker (its executor and Python workers too) while the long job's tasks run.
        victim = cluster.workers[0]
        _until(lambda: _busy_cores(cluster) == 2, "both workers busy with the long job")
        time.sleep(SECONDS_EACH / 2)
        victim.kill()

        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, f"driver failed:\n{out}\n{err[-4000:]}"
    result = json.loads(out.splitlines()[-1])
    # Every partition once, with all its rows; the ones after the kill ran on the survivor.
    assert [partition for partition, _, _ in result["sessions"]] == list(range(PARTITIONS))
    assert sum(rows for _, _, rows in result["sessions"]) == PARTITIONS * ROWS_EACH
    assert {session for _, session, _ in result["sessions"]} <= workers
    assert cluster.workers[1].popen.pid in {session for _, session, _ in result["sessions"]}


def _lines_until(driver: subprocess.Popen[str], progress: str) -> list[dict[str, Any]]:
    assert driver.stdout is not None
    lines = []
    for line in driver.stdout:
        lines.append(json.loads(line))
        if lines[-1].get("progress") == progress:
            return lines
    _, err = driver.communicate()
    raise AssertionError(f"the driver ended before {progress!r}:\n{lines}\n{err[-4000:]}")


def _running_app(cluster: StandaloneCluster) -> dict[str, Any]:
    apps = cluster.state()["activeapps"]
    assert isinstance(apps, list) and len(apps) == 1, apps
    app: dict[str, Any] = apps[0]
    return app


def _busy_cores(cluster: StandaloneCluster) -> int:
    return sum(int(worker["coresused"]) for worker in cluster.alive_workers())  # type: ignore[call-overload]


def _until(condition: Any, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.2)
