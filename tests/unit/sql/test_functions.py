"""Each portable helper as every dialect spells it, and on DuckDB the value of the function it
replaced (the text changed spelling; what it computes did not)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from gristmill.sql import functions as f
from gristmill.sql.render import render

V, W = exp.column("v", quoted=True), exp.column("w", quoted=True)

SPELLINGS: dict[str, tuple[exp.Expr, dict[str, str]]] = {
    "time_bucket": (
        f.time_bucket(V, timedelta(seconds=5)),
        {
            "duckdb": "TIME_BUCKET(INTERVAL '5' SECOND, \"v\")",
            "postgres": "DATE_BIN(INTERVAL '5 SECOND', \"v\", CAST('2000-01-03 00:00:00' AS TIMESTAMP))",
            "spark": "TIMESTAMP_MICROS(UNIX_MICROS(`v`) - PMOD(UNIX_MICROS(`v`) - 946857600000000, 5000000))",
        },
    ),
    "time_bucket_sub_second": (
        f.time_bucket(V, timedelta(milliseconds=1500)),
        {
            "duckdb": "TIME_BUCKET(INTERVAL '1500000' MICROSECOND, \"v\")",
            "postgres": "DATE_BIN(INTERVAL '1500000 MICROSECOND', \"v\", "
            "CAST('2000-01-03 00:00:00' AS TIMESTAMP))",
            "spark": "TIMESTAMP_MICROS(UNIX_MICROS(`v`) - PMOD(UNIX_MICROS(`v`) - 946857600000000, 1500000))",
        },
    ),
    "interval": (
        f.interval(timedelta(minutes=1)),
        {
            "duckdb": "INTERVAL '60' SECOND",
            "postgres": "INTERVAL '60 SECOND'",
            "spark": "INTERVAL '60' SECOND",
        },
    ),
    "struct_field": (
        f.struct_field(V, "a b"),
        {"duckdb": "STRUCT_EXTRACT(\"v\", 'a b')", "postgres": '("v")."a b"', "spark": "`v`.`a b`"},
    ),
    "struct_of_as_json": (
        f.to_json(f.struct_of([("a", V)])),
        {
            "duckdb": "CAST(TO_JSON({'a': \"v\"}) AS TEXT)",
            "postgres": "CAST(JSONB_BUILD_OBJECT('a', \"v\") AS TEXT)",
            "spark": "TO_JSON(STRUCT(`v` AS `a`))",
        },
    ),
    "to_json": (
        f.to_json(V),
        {
            "duckdb": 'CAST(TO_JSON("v") AS TEXT)',
            "postgres": 'CAST(TO_JSONB("v") AS TEXT)',
            "spark": "TO_JSON(`v`)",
        },
    ),
    "md5": (f.md5(V), {"duckdb": 'MD5("v")', "postgres": 'MD5(CAST("v" AS TEXT))', "spark": "MD5(`v`)"}),
    "hash_number": (
        f.hash_number(V),
        {
            "duckdb": 'MD5_NUMBER("v")',
            "postgres": "CAST(CAST('x' || SUBSTRING(MD5(\"v\") FROM 1 FOR 16) AS BIT(64)) AS BIGINT)",
            "spark": "CAST(CONV(SUBSTRING(MD5(`v`), 1, 16), 16, 10) AS DECIMAL(20, 0))",
        },
    ),
    "row_digest": (
        f.row_digest(V, W),
        {
            "duckdb": 'HASH("v", "w")',
            "postgres": 'CAST(CAST(\'x\' || SUBSTRING(MD5(CAST(("v", "w") AS TEXT)) FROM 1 FOR 16) '
            "AS BIT(64)) AS BIGINT)",
            "spark": "XXHASH64(`v`, `w`)",
        },
    ),
    "epoch_seconds": (
        f.epoch_seconds(V),
        {
            "duckdb": 'EPOCH("v")',
            "postgres": "DATE_PART('epoch', \"v\")",
            "spark": "UNIX_MICROS(CAST(`v` AS TIMESTAMP)) / 1e6",
        },
    ),
    "at_utc": (
        f.at_utc(V),
        {
            "duckdb": "\"v\" AT TIME ZONE 'UTC'",
            "postgres": "\"v\" AT TIME ZONE 'UTC'",
            "spark": "FROM_UTC_TIMESTAMP(`v`, 'UTC')",
        },
    ),
    "list_transform": (
        f.list_transform(V, "x", exp.Add(this=exp.column("x"), expression=exp.Literal.number(1))),
        {
            "duckdb": 'LIST_TRANSFORM("v", LAMBDA x : x + 1)',
            "postgres": 'ARRAY(SELECT x + 1 FROM UNNEST("v") AS _gm_u(x))',
            "spark": "TRANSFORM(`v`, x -> x + 1)",
        },
    ),
    "list_any": (
        f.list_any(V),
        {
            "duckdb": 'LIST_BOOL_OR("v")',
            "postgres": '(SELECT BOOL_OR(_gm_v) FROM UNNEST("v") AS _gm_u(_gm_v))',
            "spark": "ARRAY_CONTAINS(`v`, TRUE)",
        },
    ),
    "unnest": (f.unnest(V), {"duckdb": 'UNNEST("v")', "postgres": 'UNNEST("v")', "spark": "EXPLODE(`v`)"}),
    "list_positions": (
        f.list_positions(V),
        {
            "duckdb": 'GENERATE_SUBSCRIPTS("v", 1)',
            "postgres": 'GENERATE_SUBSCRIPTS("v", 1)',
            "spark": "GENERATE_SUBSCRIPTS(`v`, 1)",  # no Spark spelling yet: see nesting's fixtures
        },
    ),
    "merge_patch": (
        f.merge_patch(exp.Literal.string("{}"), f.to_json(f.struct_of([("a", V)]))),
        {
            "duckdb": "JSON_MERGE_PATCH('{}', CAST(TO_JSON({'a': \"v\"}) AS TEXT))",
            "postgres": "JSONB_STRIP_NULLS(CAST(CAST(JSONB_BUILD_OBJECT('a', \"v\") AS TEXT) AS JSONB))",
            "spark": "TO_JSON(STRUCT(`v` AS `a`))",
        },
    ),
    "end_of_time": (
        f.end_of_time(),
        {
            "duckdb": "CAST('infinity' AS TIMESTAMPTZ)",
            "postgres": "CAST('infinity' AS TIMESTAMPTZ)",
            "spark": "CAST('9999-12-31 23:59:59.999999' AS TIMESTAMP_LTZ)",
        },
    ),
    "last_moment": (
        f.last_moment(),
        {
            "duckdb": "CAST('294247-01-01 00:00:00+00' AS TIMESTAMPTZ)",
            "postgres": "CAST('294247-01-01 00:00:00+00' AS TIMESTAMPTZ)",
            "spark": "CAST('9999-12-31 23:59:59' AS TIMESTAMP_LTZ)",
        },
    ),
    "wide_integer": (
        exp.cast(V, "HUGEINT"),
        {
            "duckdb": 'CAST("v" AS INT128)',
            "postgres": 'CAST("v" AS DECIMAL)',
            "spark": "CAST(`v` AS DECIMAL(38, 0))",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(SPELLINGS))
@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_spelling(name: str, dialect: str) -> None:
    node, expected = SPELLINGS[name]
    text = render(node, dialect)
    assert text == expected[dialect]
    sqlglot.parse_one(text, read=dialect)  # the dialect's own grammar reads it


def test_lowering_leaves_the_input_alone() -> None:
    node = f.struct_field(V, "a")
    render(node, "postgres")
    assert isinstance(node, exp.StructExtract)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        "(TIMESTAMP '2024-03-05 10:17:23.5', 'abc', 1, {'p': 1, 'q': NULL, 'a b': 'x'}, [true, NULL, false]),"
        "(TIMESTAMP '1999-12-31 23:59:59', '', NULL, NULL, [NULL::BOOLEAN]),"
        "(TIMESTAMP '2000-01-03 00:00:07', 'x y', -4, {'p': NULL, 'q': 2, 'a b': NULL}, [])"
        ") AS v(ts, s, n, st, l)"
    )
    return con


def _same(con: duckdb.DuckDBPyConnection, old: str, new: exp.Expr) -> None:
    ours = render(new, "duckdb")
    rows = con.execute(f"SELECT {old} AS old, {ours} AS new FROM t").fetchall()
    assert rows and all(a == b for a, b in rows), rows


def test_duckdb_values(con: duckdb.DuckDBPyConnection) -> None:
    ts, s, n = exp.column("ts"), exp.column("s"), exp.column("n")
    st, lst = exp.column("st"), exp.column("l")
    _same(con, "time_bucket(to_microseconds(7000000), ts)", f.time_bucket(ts, timedelta(seconds=7)))
    _same(con, "time_bucket(to_microseconds(1500000), ts)", f.time_bucket(ts, timedelta(milliseconds=1500)))
    _same(con, "to_microseconds(90000000)", f.interval(timedelta(seconds=90)))
    _same(con, "struct_extract(st, 'a b')", f.struct_field(st, "a b"))
    _same(con, 'to_json(struct_pack("s" := s, "n" := n))', f.to_json(f.struct_of([("s", s), ("n", n)])))
    _same(con, "to_json(st)", f.to_json(st))
    _same(con, "md5(s)", f.md5(s))
    _same(con, "md5_number(s)", f.hash_number(s))
    _same(con, "hash(s, n)", f.row_digest(s, n))
    _same(con, "epoch(ts)", f.epoch_seconds(ts))
    _same(con, "timezone('UTC', ts)", f.at_utc(ts))
    _same(con, "list_transform(l, x -> NOT x)", f.list_transform(lst, "x", exp.Not(this=exp.column("x"))))
    _same(con, "list_bool_or(l)", f.list_any(lst))
    _same(
        con,
        "json_merge_patch('{}', to_json(st))",
        f.merge_patch(exp.Literal.string("{}"), f.to_json(st)),
    )


def test_duckdb_moments_are_ordered(con: duckdb.DuckDBPyConnection) -> None:
    last, end = render(f.last_moment(), "duckdb"), render(f.end_of_time(), "duckdb")
    ordered = f"SELECT max(ts)::TIMESTAMPTZ < {last} AND {last} < {end} FROM t"
    assert con.execute(ordered).fetchone() == (True,)


def test_duckdb_unnest_with_positions(con: duckdb.DuckDBPyConnection) -> None:
    lst = exp.column("l")
    ours = exp.select(f.unnest(lst), f.list_positions(lst)).from_("t")
    assert (
        con.execute(render(ours, "duckdb")).fetchall()
        == con.execute("SELECT unnest(l), generate_subscripts(l, 1) FROM t").fetchall()
    )


def test_time_bucket_aligns_to_the_origin(con: duckdb.DuckDBPyConnection) -> None:
    """Windows start at TIME_BUCKET_ORIGIN + k * width, as the Spark arithmetic assumes."""
    origin = f"TIMESTAMP '{f.TIME_BUCKET_ORIGIN}'"
    bucket = render(f.time_bucket(exp.column("ts"), timedelta(seconds=7)), "duckdb")
    rows = con.execute(f"SELECT epoch_us({bucket}) - epoch_us({origin}) FROM t").fetchall()
    assert all(offset % 7_000_000 == 0 for (offset,) in rows)


def test_duckdb_needs_no_lowering() -> None:
    """Text rendered without ``sql.render`` (``.sql(dialect="duckdb")``) still runs on DuckDB:
    every helper's plain spelling is the first engine's."""
    assert "duckdb" not in f.LOWERINGS
