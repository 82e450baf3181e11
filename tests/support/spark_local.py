"""One local Spark session per test process, for tests that judge SQL on Spark itself (a JVM in
this process: a few seconds to start, then tens of milliseconds a statement)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_SESSION: list[SparkSession] = []


def local_spark() -> SparkSession:
    """The process's local session (started on first use): UTC, no UI, two threads, Spark's
    defaults otherwise (ANSI mode on, as a target's session has it)."""
    if _SESSION:
        return _SESSION[0]
    if os.environ.get("CI") != "true":
        pytest.importorskip("pyspark")
    from tests.support.spark_engine import start_shared_session

    # The same session the engine's tests use (one JVM per process keeps its first settings).
    session = start_shared_session()
    session.sparkContext.setLogLevel("ERROR")
    _SESSION.append(session)
    return session


def spark_arrow(spark: SparkSession, sql: str) -> pa.Table:
    """A statement's rows as Arrow, as ``gristmill query`` returns them."""
    return spark.sql(sql).toArrow()
