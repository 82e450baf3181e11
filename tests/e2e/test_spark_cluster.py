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

from tests.support.spark_servers import StandaloneCluster, connect_server, standalone_cluster, started

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
        victim, survivor = cluster.live()
        workers = {victim.popen.pid, survivor.popen.pid}
        # Each task ran in a worker's session (its executor's Python worker), none in the driver's.
        ran_in = {session for _, session, _ in first["sessions"]}
        assert ran_in <= workers and first["driver_session"] not in ran_in, (ran_in, workers)
        assert first["executors"] == 2
        app = _running_app(cluster)
        assert app["cores"] == 2 and app["state"] == "RUNNING"

        # Kill one worker (its executor and Python workers too) while the long job's tasks run.
        _until(lambda: _busy(cluster) == 2, "both workers busy with the long job")
        time.sleep(SECONDS_EACH / 2)
        victim.kill()

        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        cluster.heal()
    assert driver.returncode == 0, f"driver failed:\n{out}\n{err[-4000:]}"
    result = json.loads(out.splitlines()[-1])
    # Every partition once, with all its rows; the ones after the kill ran on the survivor.
    assert [partition for partition, _, _ in result["sessions"]] == list(range(PARTITIONS))
    assert sum(rows for _, _, rows in result["sessions"]) == PARTITIONS * ROWS_EACH
    assert {session for _, session, _ in result["sessions"]} <= workers
    assert survivor.popen.pid in {session for _, session, _ in result["sessions"]}


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


def _until(condition: Any, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.2)


ORDERS = "order_id,region,amount\n" + "".join(
    f"{i},{('north', 'south', 'east')[i % 3]},{i * 1.5}\n" for i in range(1, 301)
)
PROJECT = {
    "sources/shop.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
    "data/orders.csv": ORDERS,
    "models/staging/orders.sql": "select * from raw.shop__orders\n",
    "models/marts/by_region.sql": (
        "-- kind: table\n"
        "select region, sum(amount) as revenue, count(*) as orders from staging.orders group by 1\n"
    ),
}
EXPECTED = [
    {"region": region, "revenue": sum(i * 1.5 for i in range(1, 301) if i % 3 == n), "orders": 100}
    for n, region in sorted(enumerate(("north", "south", "east")), key=lambda pair: pair[1])
]


def _gristmill(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gristmill"), *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"SPARK_LOCAL_IP": "127.0.0.1"},
    )


def _build_while_a_worker_dies(
    root: Path, target: str, cluster: StandaloneCluster, wait_for_executor: bool
) -> None:
    victim = cluster.live()[0]
    run = _gristmill(root, "run", "--target", target)
    try:
        if wait_for_executor:  # the build's own application has an executor on the victim
            _until(
                lambda: cluster.cores_used(victim) == 1 or run.poll() is not None,
                "an executor on the victim",
            )
        else:  # the Connect server's executors exist already: kill once the build has begun
            time.sleep(3)
        victim.kill()
        out, _ = run.communicate(timeout=400)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        cluster.heal()
    assert run.returncode == 0, out[-4000:]
    query = _gristmill(
        root, "query", "--target", target, "--format", "json", "select * from marts.by_region order by region"
    )
    out, _ = query.communicate(timeout=300)
    assert query.returncode == 0, out[-4000:]
    assert json.loads(out[out.index("[") :]) == EXPECTED


def test_a_gristmill_build_on_a_standalone_master_survives_a_killed_worker(
    make_project: Any, cluster: StandaloneCluster
) -> None:
    conf = f'{{ "spark.executor.memory" = "512m", "spark.pyspark.python" = "{sys.executable}" }}'
    toml = 'name = "shop"\ntarget = "cluster"\n[targets.cluster]\nengine = "spark"\n'
    toml += f'master = "{cluster.url}"\nconf = {conf}\n'
    root = make_project(PROJECT, toml=toml)
    _build_while_a_worker_dies(root, "cluster", cluster, wait_for_executor=True)


def test_a_gristmill_build_through_spark_connect_survives_a_killed_worker(
    make_project: Any, cluster: StandaloneCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("connect-on-cluster")
    server = connect_server(folder, master=cluster.url, conf={"spark.executor.memory": "512m"})
    with started(server) as connect:
        toml = 'name = "shop"\ntarget = "connect"\n[targets.connect]\nengine = "spark"\n'
        toml += f'remote = "{connect.url}"\n'
        root = make_project(PROJECT, toml=toml)
        _until(lambda: _busy(cluster) == cluster.size, "the Connect server's executors on every worker")
        _build_while_a_worker_dies(root, "connect", cluster, wait_for_executor=False)


def _busy(cluster: StandaloneCluster) -> int:
    return sum(cluster.cores_used(worker) for worker in cluster.live())
