"""The data diff's statements as golden SQL for every dialect, and run on a real PostgreSQL: the
same planted differences found there as on DuckDB (tests/unit/sql/test_datadiff.py)."""

from __future__ import annotations

import duckdb
import psycopg
import pytest
from sqlglot import exp

from gristmill.sql import datadiff as d
from gristmill.sql.render import render
from tests.golden import assert_golden
from tests.support.pg_engine import postgres_database

BASE, HEAD = exp.to_table("s.base_t"), exp.to_table("s.head_t")
COLUMNS = [d.Compared("n"), d.Compared("f", "tolerance"), d.Compared("t", "text")]
KEY = ["id"]
SETUP = [
    "CREATE SCHEMA s",
    "CREATE TABLE s.base_t (id INTEGER, n INTEGER, f DOUBLE PRECISION, t INTEGER)",
    "CREATE TABLE s.head_t (id INTEGER, n INTEGER, f DOUBLE PRECISION, t TEXT)",
    # 1 same, 2 n changed, 3 f within tolerance, 4 removed, 5 added, 6 duplicated in head,
    # 7 NULL = NULL, NULL key in base, 8 t retyped but equal as text, 9 f NULL against a value
    "INSERT INTO s.base_t VALUES (1, 1, 1.0, 1), (2, 1, 1.0, 1), (3, 1, 1.0, 1), (4, 1, 1.0, 1),"
    " (6, 1, 1.0, 1), (7, NULL, NULL, NULL), (NULL, 1, 1.0, 1), (8, 1, 1.0, 42), (9, 1, NULL, 1)",
    "INSERT INTO s.head_t VALUES (1, 1, 1.0, '1'), (2, 2, 1.0, '1'), (3, 1, 1.05, '1'),"
    " (5, 1, 1.0, '1'), (6, 1, 1.0, '1'), (6, 2, 1.0, '1'), (7, NULL, NULL, NULL), (8, 1, 1.0, '42'),"
    " (9, 1, 2.0, '1')",
]
PROBE = (9, 1, 0, 0, 9, 0, 1, 2)
SUMMARY = (1, 1, 2, 4, 1, 1, 0)  # added, removed, changed, same, then n, f, t changed


def test_the_statements_match_their_golden_files() -> None:
    assert_golden("diff/key_probe", d.key_probe(BASE, HEAD, KEY))
    assert_golden("diff/key_sample", d.key_sample(HEAD, KEY, 10))
    assert_golden("diff/summary", d.summary(BASE, HEAD, KEY, COLUMNS, tolerance=0.1, exclude_duplicates=True))
    assert_golden("diff/sample", d.sample(BASE, HEAD, KEY, COLUMNS, 10, tolerance=0.1))


def _answers(run: object) -> None:
    assert run(d.key_probe(BASE, HEAD, KEY)) == [PROBE]  # type: ignore[operator]
    found = run(d.summary(BASE, HEAD, KEY, COLUMNS, tolerance=0.1, exclude_duplicates=True))  # type: ignore[operator]
    assert found == [SUMMARY]
    rows = run(d.sample(BASE, HEAD, KEY, COLUMNS, 1, tolerance=0.1, exclude_duplicates=True))  # type: ignore[operator]
    assert [(r[0], r[1]) for r in rows] == [("added", 5), ("changed", 2), ("removed", 4)]


def test_duckdb_finds_the_planted_differences() -> None:
    con = duckdb.connect()
    for statement in SETUP:
        con.execute(statement)
    _answers(lambda q: [tuple(r) for r in con.execute(render(q, "duckdb")).fetchall()])


@pytest.mark.services
def test_postgres_finds_the_same_differences() -> None:
    with postgres_database("gristmill_diff") as url, psycopg.connect(url, autocommit=True) as pg:
        for statement in SETUP:
            pg.execute(statement.encode())
        _answers(lambda q: [tuple(r) for r in pg.execute(render(q, "postgres").encode()).fetchall()])
