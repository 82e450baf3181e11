"""A private, empty DuckDB engine in memory: where unit tests run when the project's engine kind
has no scratch engine of its own, and the conformance suite's DuckDB engine."""

from __future__ import annotations

from sqlglot import exp

from gristmill._util.duckdb_extensions import connect
from gristmill.engines.duckdb.engine import DuckDBEngine

MEMORY_CATALOG = "memory"


def memory_engine(*, time_zone: str = "UTC") -> DuckDBEngine:
    """A fresh in-memory engine; its session time zone is ``time_zone`` (tests pin UTC so that
    times compare the same on every machine)."""
    con = connect()
    # Set once connected: the time zone setting needs ICU, which loads from the packaged
    # extensions only once the connection knows where they are.
    con.execute(f"SET TimeZone = {exp.Literal.string(time_zone).sql(dialect=DuckDBEngine.dialect)}")
    return DuckDBEngine(con, catalog=MEMORY_CATALOG, lake=False)
