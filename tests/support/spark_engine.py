"""One Spark session per test session for the spark engine's tests: a JVM keeps the configuration
it started with (``getOrCreate`` cannot change it), so the first engine's warehouse and embedded
Derby metastore serve every test. Each engine opened gets a schema prefix of its own (its
databases) and, in its own target folder, a ledger of its own, so tests never see each other's
tables.

No Java fails the tests under CI (``CI`` set) and skips them elsewhere, with the reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gristmill.config.settings import EngineSettings, ProjectSettings
from tests.support.pg_engine import schema_prefix

MASTER = "local[2]"
TEST_CONF = {
    # Test data is tiny: few partitions, no broadcast timeouts to wait for.
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
}


def spark_settings(prefix: str | None = None) -> EngineSettings:
    """A spark target's settings on the shared session, under a schema prefix of its own."""
    return EngineSettings(
        kind="spark", master=MASTER, schema_prefix=prefix or schema_prefix(), conf=TEST_CONF
    )


def start_shared_session(folder: Path) -> None:
    """Start the test session's JVM with its warehouse and metastore in ``folder``."""
    if shutil.which("java") is None:
        message = "Java is not installed: the spark engine's tests need Java 17+ (scripts/setup-spark)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from gristmill.engines.spark.session import plan_session, start_session

    settings = ProjectSettings(name="spark_tests", engine=spark_settings())
    start_session(plan_session(settings, folder))
