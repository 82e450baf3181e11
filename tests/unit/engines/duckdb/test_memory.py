"""The in-memory DuckDB engine: private, empty, its session in UTC."""

from __future__ import annotations

from sqlglot import exp

from gristmill.engines.base import Relation
from gristmill.engines.duckdb.memory import memory_engine


def test_each_memory_engine_is_private_and_in_utc() -> None:
    first, second = memory_engine(), memory_engine()
    try:
        first.create_table_as(Relation("s", "t"), exp.select(exp.Literal.number(1).as_("a")))
        assert first.exists(Relation("s", "t"))
        assert not second.exists(Relation("s", "t"))
        assert first.row(
            exp.select(exp.func("current_setting", exp.Literal.string("TimeZone")).as_("tz"))
        ) == {"tz": "UTC"}
    finally:
        first.close()
        second.close()
