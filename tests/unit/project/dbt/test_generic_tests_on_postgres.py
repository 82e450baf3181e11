"""dbt's generic tests (and dbt_utils') return the same failing rows on PostgreSQL as on DuckDB:
each golden case's query is run on both, over the same tables (``unique`` spells its
``* EXCLUDE`` with a whole-row column there)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import psycopg
import pytest
from sqlglot import exp

from gristmill.sql.render import render
from tests.support.pg_engine import postgres_database
from tests.unit.project.dbt.test_golden_tests import CASES

TABLES = [
    "CREATE SCHEMA IF NOT EXISTS main",
    "CREATE TABLE main.orders (id INTEGER, day DATE, customer_id INTEGER, status VARCHAR, amount DOUBLE "
    "PRECISION, tier INTEGER, updated_at TIMESTAMP)",
    "INSERT INTO main.orders VALUES (1, DATE '2024-01-01', 10, 'paid', 5, 1, TIMESTAMP '2024-01-01 10:00'),"
    " (1, DATE '2024-01-01', 11, 'open', -1, 3, TIMESTAMP '2024-01-02 10:00'),"
    " (2, DATE '2024-01-03', NULL, 'paid', 150, 2, TIMESTAMP '2024-01-04 10:00'),"
    " (3, DATE '2024-01-02', 99, 'void', NULL, NULL, TIMESTAMP '2024-01-05 10:00'),"
    " (NULL, DATE '2024-01-09', 10, '  ', 0, 1, NULL)",
    "CREATE TABLE main.customers (id INTEGER)",
    "INSERT INTO main.customers VALUES (10), (11), (12)",
    "CREATE TABLE main.raw_orders (id INTEGER, status VARCHAR)",
    "INSERT INTO main.raw_orders VALUES (1, 'paid'), (2, 'paid'), (3, 'open')",
]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[duckdb.DuckDBPyConnection, psycopg.Connection]]:
    with postgres_database("gristmill_dbt") as url, psycopg.connect(url, autocommit=True) as pg:
        ddb = duckdb.connect()
        for statement in TABLES:
            ddb.execute(statement.replace("DOUBLE PRECISION", "DOUBLE"))
            pg.execute(statement.encode())
        yield ddb, pg
        ddb.close()


def _placed(query: exp.Expr) -> exp.Expr:
    """``this`` as a run places it: the tested table aliased ``this``."""
    placed = query.copy()
    for table in list(placed.find_all(exp.Table)):
        if table.name == "this" and not table.db:
            table.replace(exp.alias_(exp.table_("orders", db="main"), table.alias or "this", table=True))
    return placed


def _rows(rows: list[tuple[Any, ...]], name: str) -> list[str]:
    """Rows in a stable order; a ratio is ``numeric`` on PostgreSQL (an integer over a decimal)
    where DuckDB divides in floating point, and ``recency`` also returns the current time."""
    plain = [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
    return sorted(repr(row[:1] if name.startswith("recency") else row) for row in plain)


@pytest.mark.services
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_generic_test_finds_the_same_rows_on_postgres(engines, name: str) -> None:
    ddb, pg = engines
    query = _placed(CASES[name]())
    expected = ddb.execute(render(query, "duckdb")).fetchall()
    got = pg.execute(render(query, "postgres", strict=True).encode()).fetchall()
    assert _rows(got, name) == _rows(expected, name)
