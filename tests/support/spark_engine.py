"""One Spark session per test session for the spark engine's tests: a JVM keeps the configuration
it started with (``getOrCreate`` cannot change it), so the first engine's warehouse and embedded
Derby metastore serve every test. Each engine opened gets a schema prefix of its own (its
databases) and, in its own target folder, a ledger of its own, so tests never see each other's
tables.

No Java fails the tests under CI (``CI`` set) and skips them elsewhere, with the reason."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gristmill.config.settings import EngineSettings, ProjectSettings
from tests.support.pg_engine import schema_prefix

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER = "local[2]"
TEST_CONF = {
    # Test data is tiny: few partitions, no broadcast timeouts to wait for.
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
    # One JVM serves the whole suite: the default 1 GB heap fills over a full run and every
    # statement then waits on the collector.
    "spark.driver.memory": "4g",
}


def spark_settings(prefix: str | None = None) -> EngineSettings:
    """A spark target's settings on the shared session, under a schema prefix of its own."""
    return EngineSettings(
        kind="spark", master=MASTER, schema_prefix=prefix or schema_prefix(), conf=TEST_CONF
    )


_FOLDER: list[Path] = []


def start_shared_session(folder: Path | None = None) -> SparkSession:
    """The test process's JVM, started on first use with its warehouse and metastore in
    ``folder`` (default: a temporary folder of the process). Every Spark-backed test module
    starts it through here (tests/support/spark_local.py too), so whichever runs first, the
    session is the same: a Hive catalog whose tables lie under a temporary folder."""
    if shutil.which("java") is None:
        message = "Java is not installed: the spark engine's tests need Java 17+ (scripts/setup-spark)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from gristmill.engines.spark.session import plan_session, share_running_session, start_session

    if not _FOLDER:
        _FOLDER.append(folder or Path(tempfile.mkdtemp(prefix="gristmill-spark-")))
    settings = ProjectSettings(name="spark_tests", engine=spark_settings())
    session = start_session(plan_session(settings, _FOLDER[0]))
    # Every engine the tests open (each in its own project folder) uses this one session.
    share_running_session()
    return session
