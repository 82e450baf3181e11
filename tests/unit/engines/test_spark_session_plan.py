"""The spark target's session plan (no JVM) and the filter on the driver JVM's stderr."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gristmill.config.secrets import redact
from gristmill.config.settings import ProjectSettings
from gristmill.engines.spark.jvm_output import NOISE, StderrRelay
from gristmill.engines.spark.session import POSTGRES_JDBC_JAR, plan_session, start_session
from gristmill.errors import EngineError


def plan(tmp_path: Path, **engine: object):  # type: ignore[no-untyped-def]
    settings = ProjectSettings.model_validate({"name": "p", "engine": {"kind": "spark", **engine}})
    return plan_session(settings, tmp_path)


def test_a_local_plan_keeps_warehouse_and_derby_metastore_in_the_target_folder(tmp_path: Path) -> None:
    local = plan(tmp_path, master="local[2]")
    folder = tmp_path.resolve() / ".gristmill" / "spark"
    assert local.master == "local[2]" and local.remote is None
    assert local.conf["spark.sql.warehouse.dir"] == str(folder / "warehouse")
    url = local.conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert url == f"jdbc:derby:;databaseName={folder / 'metastore'};create=true"
    assert "spark.jars.packages" not in local.conf  # nothing downloaded at run time


@pytest.mark.skipif(
    not POSTGRES_JDBC_JAR.exists() and not os.environ.get("CI"),
    reason="scripts/setup-spark installs the JDBC driver",
)
def test_a_postgresql_metastore_uses_the_debian_driver_and_hides_the_password(tmp_path: Path) -> None:
    pg = plan(
        tmp_path, master="local[1]", metastore="postgresql://meta:S3cr%40t-pw@db.internal:5433/spark_meta"
    )
    prefix = "spark.hadoop.javax.jdo.option."
    assert pg.conf[f"{prefix}ConnectionURL"] == "jdbc:postgresql://db.internal:5433/spark_meta"
    assert pg.conf[f"{prefix}ConnectionUserName"] == "meta"
    assert pg.conf[f"{prefix}ConnectionPassword"] == "S3cr@t-pw"
    assert pg.conf["spark.driver.extraClassPath"] == str(POSTGRES_JDBC_JAR)
    # Foreign keys would make the first statement on a fresh database wait forever.
    assert pg.conf["spark.hadoop.datanucleus.schema.autoCreateConstraints"] == "false"
    assert redact("login failed for S3cr@t-pw") == "login failed for ***"


def test_a_remote_plan_starts_no_jvm_and_an_unreachable_server_fails_fast(tmp_path: Path) -> None:
    remote = plan(tmp_path, remote="sc://127.0.0.1:9/;token=abc123")
    assert remote.master is None and remote.remote == "sc://127.0.0.1:9/;token=abc123"
    started = time.monotonic()
    with pytest.raises(
        EngineError, match=r"Spark Connect server sc://127\.0\.0\.1:9 is not reachable"
    ) as raised:
        start_session(remote)
    assert time.monotonic() - started < 10
    assert "abc123" not in str(raised.value)


def test_an_unreachable_master_and_a_missing_java_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EngineError, match=r"master spark://127\.0\.0\.1:9 is not reachable"):
        start_session(plan(tmp_path, master="spark://127.0.0.1:9"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match=r"needs Java 17 or later .*java is not on PATH"):
        start_session(plan(tmp_path, master="local[1]"))


def test_only_the_lines_every_start_prints_are_dropped() -> None:
    dropped = [
        "WARNING: Using incubator modules: jdk.incubator.vector",
        'Setting default log level to "WARN".',
        "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).",
        "/x/pyspark/sql/pandas/conversion.py:324: FutureWarning: PySpark does not yet fully support "
        "pandas >= 3.0.0. Some features may not work correctly.",
        "  require_minimum_pandas_version()",
    ]
    kept = [
        "18:09:36 ERROR TransportResponseHandler: Still have 1 requests outstanding",
        "Error: WARNING: Using incubator modules: jdk.incubator.vector and more",
        "java.lang.OutOfMemoryError: Java heap space",
    ]
    assert [line for line in dropped + kept if not NOISE.fullmatch(line)] == kept


def test_the_relay_copies_the_rest_to_stderr_and_keeps_the_last_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    read_end, write_end = os.pipe()
    relay = StderrRelay(os.fdopen(read_end, "rb"))
    os.write(write_end, b"WARNING: Using incubator modules: jdk.incubator.vector\nreal trouble\n")
    os.close(write_end)
    relay.wait_closed(5)
    assert capfd.readouterr().err == "real trouble\n"
    assert list(relay.last_lines) == ["real trouble"]
