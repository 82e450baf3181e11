"""The private DuckDB that compiling a dbt project asks: constant queries, a CSV's and a query's
column types as DuckDB gives them, and DuckDB's errors as EngineError."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill._util.duckdb_scratch import csv_types, query_types, run_constant
from gristmill.errors import EngineError


def test_a_constant_query_runs_in_utc() -> None:
    names, rows = run_constant(
        "select datediff('day', date '2024-01-01', date '2024-01-08') as n, current_setting('TimeZone') as tz"
    )
    assert (names, rows) == (["n", "tz"], [(7, "UTC")])


def test_no_file_is_read_by_a_constant_query(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(EngineError):
        run_constant(f"select * from read_csv('{tmp_path / 'x.csv'}')")


def test_a_csv_is_typed_as_it_lands(tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    path.write_text("Id;Name;amount\n1;a;NA\n2;b;3.5\n")
    assert csv_types(str(path), ["NA"], ";", None) == {"Id": "BIGINT", "Name": "VARCHAR", "amount": "DOUBLE"}
    assert csv_types(str(path), ["NA"], ";", {"Id": "VARCHAR"})["Id"] == "VARCHAR"


def test_a_query_is_typed_over_empty_tables() -> None:
    tables = {"staging.Orders": {"id": "INTEGER", "total": "DECIMAL(18,3)", "tags": "STRUCT(x INTEGER)"}}
    found = query_types('select id, sum(total) as total, tags from staging."Orders" group by all', tables)
    assert found == {"id": "INTEGER", "total": "DECIMAL(38,3)", "tags": "STRUCT(x INTEGER)"}
