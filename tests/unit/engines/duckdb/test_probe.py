"""DuckDB's answers to what compiling a dbt project asks: constant queries, a CSV's and a query's
column types (DuckDB's own spelling kept), and DuckDB's errors as EngineError."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.engines.duckdb.probe import DuckDBProbe
from gristmill.engines.registry import compile_probe
from gristmill.errors import EngineError
from gristmill.project.probe import CompileProbe, Types
from gristmill.sql import types as sql_types

probe = DuckDBProbe()


def texts(found: Types) -> dict[str, str]:
    return {column: sql_types.render(kind, "duckdb") for column, kind in found.items()}


def test_a_constant_query_runs_in_utc() -> None:
    names, rows = probe.run_constant(
        "select datediff('day', date '2024-01-01', date '2024-01-08') as n, current_setting('TimeZone') as tz"
    )
    assert (names, rows) == (["n", "tz"], [(7, "UTC")])


def test_no_file_is_read_by_a_constant_query(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(EngineError):
        probe.run_constant(f"select * from read_csv('{tmp_path / 'x.csv'}')")


def test_a_csv_is_typed_as_it_lands(tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    path.write_text("Id;Name;amount\n1;a;NA\n2;b;3.5\n")
    found = texts(probe.csv_types(str(path), ["NA"], ";", None))
    assert found == {"Id": "BIGINT", "Name": "VARCHAR", "amount": "DOUBLE"}
    assert texts(probe.csv_types(str(path), ["NA"], ";", {"Id": "VARCHAR"}))["Id"] == "VARCHAR"


def test_a_query_is_typed_over_empty_tables() -> None:
    given = {"id": "INTEGER", "total": "DECIMAL(18,3)", "tags": "STRUCT(x INTEGER)"}
    tables = {"staging.Orders": {c: sql_types.parse(t, "duckdb") for c, t in given.items()}}
    query = 'select id, sum(total) as total, tags from staging."Orders" group by all'
    found = probe.query_types(query, tables)
    assert texts(found) == {"id": "INTEGER", "total": "DECIMAL(38,3)", "tags": "STRUCT(x INTEGER)"}


def test_a_kind_without_its_own_probe_is_answered_by_duckdb() -> None:
    for kind in ("duckdb", "no-such-kind"):
        answered: CompileProbe = compile_probe(kind)
        assert answered.run_constant("select 1 + 1 as two") == (["two"], [(2,)])
