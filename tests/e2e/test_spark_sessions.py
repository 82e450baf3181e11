"""The spark target's session in its modes against real servers: local with the embedded Derby
metastore, a PostgreSQL metastore shared by two processes, and a Spark Connect server. Each
session runs in a driver process of its own (tests/support/spark_client.py), as a user's command
would. The standalone cluster is in test_spark_cluster.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gristmill.config.settings import ProjectSettings
from gristmill.engines.spark.session import plan_session, start_session
from gristmill.errors import EngineError
from tests.support import pg_cluster
from tests.support.spark_servers import ConnectServer, connect_server, started

REPO = Path(__file__).parents[2]
SERVER = "postgresql://postgres@127.0.0.1:5432"


def drive(request: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run one driver process to its end; its last stdout line (JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.spark_client", json.dumps(request)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert done.returncode == 0, f"driver failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    assert done.stderr == "", f"the session printed on stderr:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_local_table_outlives_its_process_and_the_next_process_reads_it(tmp_path: Path) -> None:
    engine = {"kind": "spark", "master": "local[2]"}
    written = drive({"engine": engine, "root": str(tmp_path), "action": "write"})
    assert written == {"tables": ["orders"]}
    read = drive({"engine": engine, "root": str(tmp_path), "action": "read"})
    assert (read["n"], read["total"]) == (1000, sum(range(1000)) * 10)
    # The target's folder holds both the Parquet files and the embedded metastore.
    spark = tmp_path / ".gristmill" / "spark"
    assert read["location"] == f"file:{spark}/warehouse/sales.db/orders"
    assert list((spark / "warehouse" / "sales.db" / "orders").glob("*.parquet"))
    assert (spark / "metastore" / "service.properties").exists()
    # In one process the same target gets the running session; another target is refused.
    assert read["same_session"] is True
    assert read["other_target"].startswith(
        "a Spark session with another warehouse already runs in this process"
    )


@pytest.fixture
def metastore_db() -> Iterator[str]:
    """A fresh database on the shared server: Spark must create the Hive schema in it."""
    name = f"gm_spark_meta_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"create database {name}")
    try:
        yield name
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def test_a_postgresql_metastore_is_shared_by_two_processes_at_once(tmp_path: Path, metastore_db: str) -> None:
    # Two driver processes on a fresh database and one shared warehouse: each writes a table and
    # waits until it sees the other's, which no embedded Derby metastore allows. The second starts
    # once the first has created the Hive schema (see docs/engines.md on a fresh metastore).
    engine = {
        "kind": "spark",
        "master": "local[1]",
        "metastore": f"{SERVER}/{metastore_db}",
        "warehouse": str(tmp_path / "warehouse"),
    }
    drivers = []
    for me, other, rows in (("left_side", "right_side", 7), ("right_side", "left_side", 11)):
        request: dict[str, Any] = {"engine": engine, "root": str(tmp_path / me), "action": "meet"}
        request |= {"me": me, "other": other, "rows": rows}
        driver = subprocess.Popen(
            [sys.executable, "-m", "tests.support.spark_client", json.dumps(request)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"SPARK_LOCAL_IP": "127.0.0.1"},
        )
        drivers.append(driver)
        assert driver.stdout is not None
        for line in driver.stdout:
            if json.loads(line).get("progress") == "created":
                break
    results = []
    for driver in drivers:
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, f"driver failed:\n{out}\n{err[-4000:]}"
        assert err == "", f"the session printed on stderr:\n{err[-4000:]}"
        results.append(json.loads(out.splitlines()[-1]))
    assert results == [{"other_rows": 11}, {"other_rows": 7}]
    with psycopg.connect(f"{SERVER}/{metastore_db}") as meta:
        tables = {row[0] for row in meta.execute('select "TBL_NAME" from "TBLS"')}
    assert tables == {"left_side", "right_side"}


def test_a_wrong_metastore_password_is_a_clear_error_that_never_shows_it(tmp_path: Path) -> None:
    secret = "Hunter2-never-print-me"
    with pg_cluster.running_cluster(wal_level="replica") as cluster:
        with cluster.connect() as admin:
            admin.execute("create role gm_meta login password 'the-right-one'")
            admin.execute("create database gm_meta owner gm_meta")
            # Passwords count from here on (the test cluster trusts everyone by default).
            (cluster.data / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
            )
            admin.execute("select pg_reload_conf()")
        url = f"postgresql://gm_meta:{secret}@127.0.0.1:{cluster.port}/gm_meta"
        settings = ProjectSettings.model_validate(
            {"name": "p", "engine": {"kind": "spark", "master": "local[1]", "metastore": url}}
        )
        with pytest.raises(EngineError) as raised:
            start_session(plan_session(settings, tmp_path))
    message = str(raised.value)
    assert "password authentication failed" in message
    assert f"gm_meta@127.0.0.1:{cluster.port}/gm_meta" in message
    assert secret not in message and "the-right-one" not in message


@pytest.fixture(scope="module")
def connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    with started(connect_server(tmp_path_factory.mktemp("connect"))) as server:
        yield server


def test_a_spark_connect_client_runs_sql_without_a_jvm_of_its_own(
    tmp_path: Path, connect: ConnectServer
) -> None:
    result = drive(
        {"engine": {"kind": "spark", "remote": connect.url}, "root": str(tmp_path), "action": "connect"}
    )
    assert result["arrow"] == {"a": [1, 2], "b": ["x", "y"]}
    assert result["arrow_type"].startswith("pyarrow")
    assert result["count"] == 5
    assert result["java_children"] == [] and result["gateway"] is False
    # The table lives in the server's warehouse, not under the client's project.
    assert list((connect.warehouse / "items").glob("*.parquet"))
    assert not (tmp_path / ".gristmill").exists()
