"""DuckDB functions a model commonly calls, rendered for PostgreSQL, run on the real server:
the value and its Python type (the column type a reader sees) match DuckDB's. And what has no
PostgreSQL form is named, not sent to the server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import duckdb
import psycopg
import pytest
import sqlglot

from gristmill.sql.render import render, unspellable
from tests.support.pg_engine import postgres_database

ROW = (
    "SELECT TIMESTAMP '2024-03-15 13:45:30.75' AS ts, DATE '2024-03-17' AS d, 'Hello World' AS s, "
    "42 AS n, -7 AS m, [3, 1, 2] AS l, 'a,b,c' AS csv"
)
TABLE = "(SELECT * FROM (VALUES (1, 'a', 10), (2, 'a', 30), (3, 'b', 20), (4, 'b', NULL)) AS v(id, g, amt))"

SCALARS = [
    *("year(ts)", "quarter(ts)", "month(ts)", "week(ts)", "weekofyear(d)", "day(ts)", "dayofmonth(d)"),
    *("dayofweek(d)", "isodow(d)", "dayofyear(d)", "hour(ts)", "minute(ts)", "second(ts)"),
    *("extract(year from ts)", "date_part('year', ts)", "datepart('dow', d)", "epoch(ts)"),
    *("monthname(d)", "dayname(d)", "strftime(ts, '%Y-%m-%d %H:%M:%S')", "strftime(d, '%Y%m%d')"),
    *("date_trunc('month', ts)", "date_diff('day', d, DATE '2024-04-01')", "last_day(d)"),
    *("datediff('month', d, DATE '2024-06-01')", "d + INTERVAL 3 DAY", "make_date(2024, 2, 29)"),
    *("strptime('2024-01-02', '%Y-%m-%d')", "to_timestamp(1700000000)"),
    *("upper(s)", "length(s)", "left(s, 3)", "substr(s, 2, 3)", "concat(s, '!', n)", "lpad('7', 3, '0')"),
    *("starts_with(s, 'He')", "ends_with(s, 'ld')", "contains(s, 'lo W')", "strpos(s, 'o')"),
    *("split_part(csv, ',', 2)", "string_split(csv, ',')", "str_split(csv, ',')", "s ilike 'hello%'"),
    *("regexp_matches(s, 'W.r')", "regexp_replace(s, 'o', '0', 'g')", "regexp_extract(s, 'W(..)', 1)"),
    *("regexp_extract(s, 'W..')", "regexp_extract(s, 'x(.)', 1)", "md5(s)", "sha256(s)"),
    *("list_contains(l, 2)", "array_length(l)", "l[1]", "list_sort(l)", "list_sum(l)", "list_max(l)"),
    *("list_transform(l, x -> x * 2)", "list_filter(l, x -> x > 1)", "array_to_string(l, ',')"),
    *("n // 5", "n % 5", "n / 5", "log10(100)", "log2(8)", "round(m / 2)", "greatest(1, n)"),
    *("if(n > 1, 'y', 'n')", "ifnull(NULL, n)", "n::varchar", "cast(ts as date)"),
]

QUERIES = [
    "SELECT g, sum(amt) FROM T GROUP BY ALL ORDER BY g",
    "SELECT g, count_if(amt > 15) FROM T GROUP BY g ORDER BY g",
    "SELECT g, arg_max(id, amt), arg_min(id, amt), max_by(id, amt) FROM T GROUP BY g ORDER BY g",
    "SELECT g, any_value(amt) FROM T WHERE id <> 3 GROUP BY g ORDER BY g",
    "SELECT g, first(id ORDER BY id DESC) FROM T GROUP BY g ORDER BY g",
    "SELECT g, avg(amt), stddev(amt), median(amt) FROM T GROUP BY g ORDER BY g",
    "SELECT g, approx_count_distinct(id) FROM T GROUP BY g ORDER BY g",
    "SELECT g, string_agg(CAST(id AS VARCHAR), ',' ORDER BY id), list(id ORDER BY id) FROM T "
    "GROUP BY g ORDER BY g",
    "SELECT id FROM T QUALIFY row_number() OVER (PARTITION BY g ORDER BY amt DESC) = 1 ORDER BY id",
    "SELECT unnest(generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-03', INTERVAL 1 DAY)) AS d",
    "SELECT unnest(range(1, 4)) AS i",
    "SELECT * FROM T QUALIFY row_number() OVER (PARTITION BY g ORDER BY amt DESC NULLS LAST) = 1 ORDER BY id",
    "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY g ORDER BY id) AS rn FROM T) "
    "WHERE rn = 1 ORDER BY id",
    "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY g ORDER BY id) AS rn, "
    "id * 2 AS Twice FROM T) AS Numbered WHERE rn > 1 ORDER BY id",
    "SELECT sorted FROM (SELECT list_sort(list_distinct([2, 1, 2, NULL])) AS sorted) AS x",
]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[duckdb.DuckDBPyConnection, psycopg.Connection]]:
    with postgres_database("gristmill_fn") as url, psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        ddb = duckdb.connect()
        ddb.execute("SET TimeZone = 'UTC'")
        yield ddb, pg
        ddb.close()


def _both(servers: tuple[duckdb.DuckDBPyConnection, psycopg.Connection], query: str) -> tuple[list, list]:
    ddb, pg = servers
    expected = ddb.execute(query).fetchall()
    rendered = render(sqlglot.parse_one(query, read="duckdb"), "postgres", strict=True)
    return expected, pg.execute(rendered.encode()).fetchall()


def _typed(rows: list) -> list:
    return [[(type(v).__name__, v) for v in row] for row in rows]


@pytest.mark.services
@pytest.mark.parametrize("call", SCALARS)
def test_a_function_computes_on_postgres_what_it_computes_on_duckdb(servers, call: str) -> None:
    expected, got = _both(servers, f"SELECT {call} AS v FROM ({ROW}) AS t")
    assert _typed(got) == _typed(expected)


@pytest.mark.services
@pytest.mark.parametrize("query", QUERIES)
def test_a_query_gives_on_postgres_the_rows_it_gives_on_duckdb(servers, query: str) -> None:
    expected, got = _both(servers, re.sub(r"\bT\b", f"{TABLE} AS t", query))
    assert _typed(got) == _typed(expected)


@pytest.mark.parametrize(
    ("query", "construct"),
    [
        ("SELECT * EXCLUDE (a) FROM t", "SELECT * EXCLUDE (…) has no PostgreSQL form"),
        ("SELECT * REPLACE (a + 1 AS a) FROM t", "SELECT * REPLACE (…) has no PostgreSQL form"),
        ("SELECT try_cast(a AS INTEGER) FROM t", "TRY_CAST has no PostgreSQL form"),
        ("SELECT list_aggregate(l, 'sum') FROM t", "list_aggregate has no PostgreSQL form"),
        ("SELECT list_reduce(l, (x, y) -> x + y) FROM t", "no PostgreSQL form"),
    ],
)
def test_what_postgres_cannot_spell_is_named_with_its_place(query: str, construct: str) -> None:
    found = unspellable(sqlglot.parse_one(f"\n{query}", read="duckdb"), "postgres")
    assert found is not None
    message, node = found
    assert construct in message
    assert node is not None and node.meta.get("line", 2) == 2


def test_what_postgres_can_spell_passes() -> None:
    query = "SELECT year(d), list_transform(l, x -> x + 1), count_if(a > 1) FROM t GROUP BY ALL"
    assert unspellable(sqlglot.parse_one(query, read="duckdb"), "postgres") is None
