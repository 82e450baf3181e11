"""The SQL builders behind time slices, history tables and fact lookups: the exact SQL for the
small ones, and the big ones run in a plain in-memory DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from gristmill.sql import dimensional as dim

TARGET = exp.table_("t", db="m", quoted=True)
EVENTS = sqlglot.parse_one("select ts, id from raw.ev", read="duckdb")
JAN1, JAN3 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)


def sql(expression: exp.Expr) -> str:
    return expression.sql(dialect="duckdb")


def test_moment_is_a_literal_of_the_column_kind() -> None:
    assert sql(dim.moment(JAN1)) == "CAST('2024-01-01 00:00:00+00:00' AS TIMESTAMPTZ)"
    assert sql(dim.moment(JAN1, "TIMESTAMP")) == "CAST('2024-01-01 00:00:00' AS TIMESTAMP)"
    assert sql(dim.moment(JAN1, "DATE")) == "CAST('2024-01-01 00:00:00' AS TIMESTAMP)"
    assert sql(dim.as_utc(exp.column("d"), "DATE")) == "TIMEZONE('UTC', CAST(d AS TIMESTAMP))"
    assert sql(dim.as_utc(exp.column("z"), "TIMESTAMP WITH TIME ZONE")) == "z"
    assert dim.is_time_type("TIMESTAMP_NS") and dim.is_time_type("DATE") and not dim.is_time_type("VARCHAR")


def test_time_slice_wraps_the_query() -> None:
    assert sql(dim.time_slice(EVENTS, "ts", [(JAN1, JAN3)], "TIMESTAMP WITH TIME ZONE")) == (
        "SELECT * FROM (SELECT ts, id FROM raw.ev) AS q WHERE \"ts\" >= CAST('2024-01-01 00:00:00+00:00' AS "
        "TIMESTAMPTZ) AND \"ts\" < CAST('2024-01-03 00:00:00+00:00' AS TIMESTAMPTZ)"
    )
    assert sql(dim.time_slice(EVENTS, "ts", [], "DATE")).endswith("AS q WHERE FALSE")


def test_replace_slice_is_one_delete_and_one_insert() -> None:
    delete, insert = dim.replace_slice(TARGET, EVENTS, ["ts", "id"], "ts", JAN1, JAN3, "TIMESTAMP")
    in_range = (
        "\"ts\" >= CAST('2024-01-01 00:00:00' AS TIMESTAMP) AND "
        "\"ts\" < CAST('2024-01-03 00:00:00' AS TIMESTAMP)"
    )
    assert sql(delete) == f'DELETE FROM "m"."t" WHERE {in_range}'
    assert sql(insert) == (
        f'INSERT INTO "m"."t" ("ts", "id") SELECT "ts", "id" FROM (SELECT * FROM (SELECT ts, id FROM raw.ev) '
        f"AS q WHERE {in_range}) AS slice"
    )


def test_interval_records_are_generated_by_the_engine() -> None:
    table = exp.table_("intervals", db="_gristmill")
    insert = dim.record_intervals(table, "m.ev", JAN1, datetime(2024, 1, 2, tzinfo=UTC), "day", 7)
    assert sql(insert) == (
        'INSERT INTO _gristmill.intervals ("target", "interval_start", "interval_end", "run_id") '
        "SELECT 'm.ev', TIMEZONE('UTC', CAST(\"s\" AS TIMESTAMP)), "
        "TIMEZONE('UTC', CAST(\"s\" + INTERVAL '1' DAY AS TIMESTAMP)), CAST(7 AS BIGINT) "
        "FROM GENERATE_SERIES(CAST('2024-01-01 00:00:00' AS TIMESTAMP), CAST('2024-01-02 00:00:00' AS "
        "TIMESTAMP), INTERVAL '1' DAY) AS g(s)"
    )
    assert (
        sql(dim.forget_intervals(table, "m.ev"))
        == "DELETE FROM _gristmill.intervals WHERE \"target\" = 'm.ev'"
    )


# --- run in DuckDB --------------------------------------------------------------------------------


@pytest.fixture
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; CREATE SCHEMA m")
    yield con
    con.close()


def run(con: duckdb.DuckDBPyConnection, statement: exp.Expr) -> None:
    con.execute(sql(statement))


def fetch(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    return con.execute(query).fetchall()


def test_intervals_for_months_are_calendar_months(db: duckdb.DuckDBPyConnection) -> None:
    table = exp.table_("i", db="m")
    db.execute(
        "CREATE TABLE m.i (target VARCHAR, interval_start TIMESTAMPTZ, interval_end TIMESTAMPTZ, "
        "run_id BIGINT)"
    )
    last = datetime(2024, 3, 1, tzinfo=UTC)
    run(db, dim.record_intervals(table, "m.x", datetime(2024, 1, 1, tzinfo=UTC), last, "month", 1))
    assert fetch(
        db,
        "SELECT strftime(interval_start, '%Y-%m-%d'), strftime(interval_end, '%Y-%m-%d') FROM m.i ORDER BY 1",
    ) == [
        ("2024-01-01", "2024-02-01"),
        ("2024-02-01", "2024-03-01"),
        ("2024-03-01", "2024-04-01"),
    ]


def history(con: duckdb.DuckDBPyConnection, run_time: datetime, *, surrogate: str | None) -> dim.History:
    columns = tuple((str(r[0]), str(r[1])) for r in con.execute("DESCRIBE raw_c").fetchall())
    return dim.History(
        target=exp.table_("d", db="m"),
        columns=columns,
        key=("id",),
        tracked=("city",),
        run_time=run_time,
        surrogate=surrogate,
    )


def load(con: duckdb.DuckDBPyConnection, rows: str, run_time: datetime, *, first: bool) -> None:
    con.execute(f"CREATE OR REPLACE TABLE raw_c AS SELECT * FROM (VALUES {rows}) v(id, name, city)")
    h = history(con, run_time, surrogate="sk")
    numbered = exp.select("*", exp.alias_(exp.column("rowid"), dim.ORDINAL)).from_("raw_c").subquery("raw")
    con.execute(f"CREATE OR REPLACE TEMP TABLE inc AS {sql(dim.incoming(numbered, h))}")
    if first:
        con.execute(f"CREATE TABLE m.d AS {sql(dim.history_create(exp.table_('inc'), h))}")
    else:
        for statement in dim.history_update(exp.table_("inc"), h):
            run(con, statement)


def test_dimension_sql_keeps_keys_and_history(db: duckdb.DuckDBPyConnection) -> None:
    day1, day2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    load(db, "(2, 'b', 'Rome'), (1, 'a', 'Oslo'), (1, 'a', 'Berlin')", day1, first=True)
    load(db, "(1, 'A', 'Paris'), (3, 'c', 'Lima')", day2, first=False)
    got = fetch(
        db,
        "SELECT sk, id, name, city, strftime(_gm_valid_from, '%Y-%m-%d'), "
        "strftime(_gm_valid_to, '%Y-%m-%d'), _gm_is_current FROM m.d ORDER BY sk",
    )
    assert got == [
        (-1, None, "Unknown", "Unknown", "1900-01-01", None, True),
        (1, 1, "A", "Berlin", "1900-01-01", "2024-01-02", False),  # the last row per key won on day 1
        (2, 2, "b", "Rome", "1900-01-01", "2024-01-02", False),  # gone on day 2
        (3, 1, "A", "Paris", "2024-01-02", None, True),
        (4, 3, "c", "Lima", "1900-01-01", None, True),
    ]


def test_fact_select_and_fix_unknown(db: duckdb.DuckDBPyConnection) -> None:
    db.execute(
        "CREATE TABLE m.dim_c AS SELECT * FROM (VALUES "
        "(-1, NULL, TIMESTAMPTZ '1900-01-01 00:00:00+00', NULL::TIMESTAMPTZ), "
        "(1, 10, TIMESTAMPTZ '1900-01-01 00:00:00+00', TIMESTAMPTZ '2024-01-05 00:00:00+00'), "
        "(2, 10, TIMESTAMPTZ '2024-01-05 00:00:00+00', NULL::TIMESTAMPTZ)"
        ") v(c_key, cid, _gm_valid_from, _gm_valid_to)"
    )
    db.execute(
        "CREATE TABLE f_src AS SELECT * FROM (VALUES (1, 10, DATE '2024-01-04'), (2, 10, DATE '2024-01-05'), "
        "(3, 11, DATE '2024-01-05'), (4, NULL, DATE '2024-01-05')) v(fid, cid, day)"
    )
    lookup = dim.KeyLookup("c_key", exp.table_("dim_c", db="m"), ("cid",), "day", "DATE")
    query = sqlglot.parse_one("SELECT fid, cid, day FROM f_src", read="duckdb")
    assert isinstance(query, exp.Query)
    db.execute(f"CREATE TABLE m.f AS {sql(dim.fact_select(query, ['fid', 'cid', 'day'], [lookup]))}")
    assert fetch(db, "SELECT fid, c_key FROM m.f ORDER BY fid") == [(1, 1), (2, 2), (3, -1), (4, -1)]
    db.execute("INSERT INTO m.dim_c VALUES (3, 11, TIMESTAMPTZ '1900-01-01 00:00:00+00', NULL)")
    run(db, dim.fix_unknown(exp.table_("f", db="m"), lookup))
    assert fetch(db, "SELECT fid, c_key FROM m.f ORDER BY fid") == [(1, 1), (2, 2), (3, 3), (4, -1)]
    current = dim.KeyLookup("c_key", exp.table_("dim_c", db="m"), ("cid",))
    assert fetch(db, sql(dim.fact_select(query, ["fid"], [current]).order_by("fid"))) == [
        (1, 2),
        (2, 2),
        (3, 3),
        (4, -1),
    ]
