"""The SQL builders behind time slices, history tables and fact lookups: the exact SQL for the
small ones, and the big ones run in a plain in-memory DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    assert sql(dim.as_utc(exp.column("d"), "DATE")) == "CAST(d AS TIMESTAMP) AT TIME ZONE 'UTC'"
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
        "SELECT 'm.ev', CAST(\"s\" AS TIMESTAMP) AT TIME ZONE 'UTC', "
        "CAST(\"s\" + INTERVAL '1' DAY AS TIMESTAMP) AT TIME ZONE 'UTC', CAST(7 AS BIGINT) "
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


# --- fact lookups: planned as hash joins, equal to a plain reference --------------------------------

VERSIONS = exp.table_("dim", db="m")


def lookup(at: str | None = "ts") -> dim.KeyLookup:
    return dim.KeyLookup(column="k", dimension=VERSIONS, on=("id",), at=at, at_type="TIMESTAMP")


def dimension_table(
    con: duckdb.DuckDBPyConnection, versions: list[tuple[int, int | None, int, int | None]]
) -> None:
    """``(surrogate, natural key, valid from day, valid to day)`` rows plus the unknown member."""
    con.execute(
        "CREATE OR REPLACE TABLE m.dim "
        "(k BIGINT, id INTEGER, _gm_valid_from TIMESTAMPTZ, _gm_valid_to TIMESTAMPTZ)"
    )
    con.execute("INSERT INTO m.dim VALUES (-1, NULL, TIMESTAMPTZ '1900-01-01', NULL)")
    if versions:
        con.executemany(
            "INSERT INTO m.dim VALUES (?, ?, TIMESTAMPTZ '2024-01-01' + to_days(?), "
            "TIMESTAMPTZ '2024-01-01' + to_days(?))",
            [list(v) for v in versions],
        )


def test_a_point_in_time_lookup_is_a_hash_join_not_a_nested_loop(db: duckdb.DuckDBPyConnection) -> None:
    """An OR in the join condition (``valid_to IS NULL OR at < valid_to``) made DuckDB plan a
    blockwise nested-loop join: quadratic, 78 s for 600k lineitems with three lookups."""
    dimension_table(db, [(1, 1, 0, 3), (2, 1, 3, None)])
    db.execute("CREATE TABLE f AS SELECT 1 AS id, TIMESTAMP '2024-01-02' AS ts")
    query = sqlglot.parse_one("select id, ts from f", read="duckdb")
    assert isinstance(query, exp.Query)
    plans = [
        dim.fact_select(query, ["id", "ts"], [lookup(), lookup(None)]),
        dim.fix_unknown(exp.table_("f"), lookup()),
    ]
    db.execute("ALTER TABLE f ADD COLUMN k BIGINT DEFAULT -1")
    for statement in plans:
        plan = "\n".join(str(row[1]) for row in db.execute(f"EXPLAIN {sql(statement)}").fetchall())
        assert "HASH_JOIN" in plan
        assert "NL_JOIN" not in plan and "CROSS_PRODUCT" not in plan


def reference(
    versions: list[tuple[int, int | None, int, int | None]], key: int | None, day: int | None
) -> int:
    """The plain definition: the surrogate key of the version of ``key`` valid at ``day``."""
    for surrogate, natural, start, end in versions:
        if natural == key and day is not None and start <= day and (end is None or day < end):
            return surrogate
    return dim.UNKNOWN_KEY


@st.composite
def member_versions(draw: st.DrawFn) -> list[tuple[int, int | None, int, int | None]]:
    """Non-overlapping versions per natural key (NULL is a key like any other)."""
    versions: list[tuple[int, int | None, int, int | None]] = []
    for natural in draw(st.lists(st.one_of(st.none(), st.integers(0, 5)), unique=True, max_size=5)):
        cuts = sorted(draw(st.lists(st.integers(-3, 12), unique=True, min_size=1, max_size=4)))
        ends: list[int | None] = [*cuts[1:], None]
        if draw(st.booleans()):  # the member left the source: its last version is closed
            ends[-1] = cuts[-1] + draw(st.integers(1, 3))
        for start, end in zip(cuts, ends, strict=True):
            versions.append((len(versions) + 1, natural, start, end))
    return versions


fact_rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 7)), st.one_of(st.none(), st.integers(-5, 16))), max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=member_versions(), late=member_versions(), facts=fact_rows)
def test_point_in_time_lookup_equals_the_plain_reference(
    db: duckdb.DuckDBPyConnection,
    versions: list[tuple[int, int | None, int, int | None]],
    late: list[tuple[int, int | None, int, int | None]],
    facts: list[tuple[int | None, int | None]],
) -> None:
    """NULL keys, unknown keys, events before, between and after versions; then members that
    arrive late, which fix the rows left at the unknown member (and only those)."""
    dimension_table(db, versions)
    db.execute("CREATE OR REPLACE TABLE f (n INTEGER, id INTEGER, ts TIMESTAMP)")
    if facts:
        db.executemany(
            "INSERT INTO f VALUES (?, ?, TIMESTAMP '2024-01-01' + to_days(?) + INTERVAL 1 HOUR)",
            [[n, key, day] for n, (key, day) in enumerate(facts)],
        )
    query = sqlglot.parse_one("select n, id, ts from f", read="duckdb")
    assert isinstance(query, exp.Query)
    db.execute(
        f"CREATE OR REPLACE TABLE m.fct AS {sql(dim.fact_select(query, ['n', 'id', 'ts'], [lookup()]))}"
    )
    expected = [reference(versions, key, day) for key, day in facts]
    assert [k for (k,) in db.execute("SELECT k FROM m.fct ORDER BY n").fetchall()] == expected
    # members arriving late (new natural keys only; known members keep their versions)
    known = {natural for _, natural, _, _ in versions}
    arrived = [
        (100 + surrogate, natural, start, end)
        for surrogate, natural, start, end in late
        if natural not in known
    ]
    dimension_table(db, versions + arrived)
    run(db, dim.fix_unknown(exp.table_("fct", db="m"), lookup()))
    fixed = [
        reference(versions + arrived, key, day) if before == dim.UNKNOWN_KEY else before
        for before, (key, day) in zip(expected, facts, strict=True)
    ]
    assert [k for (k,) in db.execute("SELECT k FROM m.fct ORDER BY n").fetchall()] == fixed


def test_events_at_infinity_find_the_open_version_only(db: duckdb.DuckDBPyConnection) -> None:
    dimension_table(db, [(1, 1, 0, 3), (2, 1, 3, None), (3, 2, 0, 5)])
    db.execute(
        "CREATE TABLE f AS SELECT * FROM (VALUES (1, 1, TIMESTAMP 'infinity'), "
        "(2, 1, TIMESTAMP '-infinity'), (3, 2, TIMESTAMP 'infinity')) v(n, id, ts)"
    )
    query = sqlglot.parse_one("select n, id, ts from f", read="duckdb")
    assert isinstance(query, exp.Query)
    found = db.execute(f"{sql(dim.fact_select(query, ['n', 'id', 'ts'], [lookup()]))} ORDER BY n").fetchall()
    assert [row[-1] for row in found] == [2, dim.UNKNOWN_KEY, dim.UNKNOWN_KEY]  # member 2 has left
