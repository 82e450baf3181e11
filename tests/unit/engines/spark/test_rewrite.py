"""The spark engine's copy-on-write rewrites, checked against a real database: DuckDB runs the
original DELETE, UPDATE, INSERT or ALTER on one copy of a table, and the rewritten SELECT over
another; both must give the same rows (the shapes the runtime sends: aliased targets, subqueries
reading the target itself, UPDATE … FROM, inserts by name, by position and of VALUES)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import pytest
from sqlglot import exp, parse_one

from gristmill.engines.spark import rewrite
from gristmill.engines.spark.storage import spelled, storage_name

ROWS = (
    "SELECT * FROM (VALUES (1, 'a', 10), (2, 'b', NULL), (3, NULL, 30), (4, 'd', 40)) AS v(id, name, amount)"
)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s")
    con.execute(f"CREATE TABLE s.t AS {ROWS}")
    con.execute("CREATE TABLE s.src AS SELECT * FROM (VALUES (2, 'B'), (4, 'D')) AS v(id, name)")
    yield con
    con.close()


def columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, exp.DataType]]:
    found = con.execute("DESCRIBE s.t").fetchall()
    return [(str(row[0]), exp.DataType.build(str(row[1]), dialect="duckdb")) for row in found]


def same(con: duckdb.DuckDBPyConnection, statement: str, rewritten: Callable[[exp.Expr], exp.Query]) -> None:
    """``statement`` run on s.t, and its rewrite run over a copy of the original s.t, agree."""
    con.execute("CREATE TABLE s.before AS SELECT * FROM s.t")
    query = rewritten(parse_one(statement, read="duckdb"))
    over_copy = rewrite.substitute(query, lambda t: exp.table_("before", db="s") if t.name == "t" else None)
    got = sorted(con.execute(over_copy.sql(dialect="duckdb")).fetchall(), key=repr)
    con.execute(statement)
    want = sorted(con.execute("SELECT * FROM s.t").fetchall(), key=repr)
    assert got == want


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM s.t WHERE amount > 15",
        "DELETE FROM s.t AS x WHERE x.name IS NULL OR x.amount = 10",
        "DELETE FROM s.t",
        "DELETE FROM s.t AS t WHERE EXISTS (SELECT 1 FROM s.src AS r WHERE r.id = t.id)",
        "DELETE FROM s.t WHERE amount < (SELECT max(amount) FROM s.t)",  # reads the table it deletes from
    ],
)
def test_a_delete_keeps_the_rows_it_does_not_delete(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    same(con, statement, lambda parsed: rewrite.deleted(parsed))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE s.t SET amount = amount + 1 WHERE id > 2",
        "UPDATE s.t AS t SET name = 'x', amount = NULL WHERE t.amount IS NULL",
        "UPDATE s.t SET amount = 0",
        "UPDATE s.t AS t SET name = r.name FROM s.src AS r WHERE r.id = t.id",
    ],
)
def test_an_update_changes_only_the_rows_it_matches(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    described = columns(con)
    same(con, statement, lambda parsed: rewrite.updated(parsed, described))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO s.t SELECT 9, 'z', 90",
        "INSERT INTO s.t (amount, id) SELECT 5, 8",
        "INSERT INTO s.t VALUES (7, 'q', 70), (8, NULL, NULL)",
        "INSERT INTO s.t (id, name) VALUES (6, 'six')",
    ],
)
def test_an_insert_adds_rows_in_the_tables_columns(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    described = columns(con)

    def appended(parsed: exp.Expr) -> exp.Query:
        assert isinstance(parsed, exp.Insert)
        return exp.union(exp.select("*").from_("s.t"), rewrite.inserted(parsed, described), distinct=False)

    same(con, statement, appended)


@pytest.mark.parametrize(
    "statement",
    ["ALTER TABLE s.t ADD COLUMN extra VARCHAR", "ALTER TABLE s.t ALTER COLUMN amount TYPE BIGINT"],
)
def test_an_alter_keeps_every_row(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    described = columns(con)
    same(con, statement, lambda parsed: rewrite.altered(parsed, described))  # type: ignore[arg-type]


def test_names_are_spelled_for_the_hive_metastore() -> None:
    assert spelled("Orders") == "orders"
    odd = spelled('Tåble "q" x')
    assert odd.startswith("tble_q_x_") and odd != spelled('Tåble "q" y')
    assert all(c.isalnum() or c == "_" for c in odd) and odd == odd.lower()
    name = storage_name("x" * 300)
    assert name.startswith("_gm_") and len(name) <= 128
