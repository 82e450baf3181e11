"""A password written in gristmill.toml (a target's URL, a DuckLake catalog on PostgreSQL) never
shows: not in any command's output, not in the run history, the step logs or lineage events,
not in an error about the connection, not in any file the project writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from gristmill._util.duckdb_extensions import connect, load
from tests.conftest import Cli

pytestmark = pytest.mark.services

PASSWORD = "Tr0ub4dor-and-3"
HOST = "127.0.0.1"


@pytest.fixture
def catalog_db() -> Iterator[str]:
    """A PostgreSQL database of our own for the lake's catalog (the server trusts loopback, so
    any password is accepted: the point is only that it is written in the URL)."""
    name = f"gristmill_test_targets_{os.getpid()}"
    with psycopg.connect(host=HOST, user="postgres", dbname="postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield name
    finally:
        with psycopg.connect(host=HOST, user="postgres", dbname="postgres", autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def toml(database: str) -> str:
    return f"""name = "shop"
target = "dev"

[lineage]
openlineage = ".gristmill/openlineage.jsonl"

[targets.dev.storage]
catalog = "postgres:postgresql://postgres:{PASSWORD}@{HOST}:5432/{database}"

[targets.broken.storage]
catalog = "postgres:postgresql://postgres:{PASSWORD}@{HOST}:5432/{database}_missing"

[targets.prod]
engine = "postgres"
url = "postgresql://postgres:{PASSWORD}@db.example.internal:5432/analytics"
schema_prefix = "analytics_"
"""


FILES = {
    "sources/shop.yml": "kind: files\npath: data/orders.csv\ntables:\n  orders: {}\n",
    "data/orders.csv": "order_id,amount\n1,5.5\n2,7.25\n",
    "models/marts/totals.sql": "-- checks: [{not_null: amount}]\n"
    "select sum(amount) as amount from raw.shop__orders\n",
    "models/marts/broken.sql": "select amount / 0 :: int as x, 'no' :: int as y from raw.shop__orders\n",
}


def test_a_password_in_the_toml_appears_nowhere(
    make_project: Callable[..., Path], cli: Cli, catalog_db: str
) -> None:
    root = make_project(FILES, toml=toml(catalog_db))
    # The lake attaches a PostgreSQL catalog with DuckDB's postgres extension, which it does not
    # install itself (it loads only ducklake and sqlite): install it into this test's repository.
    con = connect()
    load(con, "postgres")
    con.close()
    said: list[str] = []

    def run(*args: str) -> tuple[int, str]:
        code, out = cli(*args, project=root)
        said.append(out)
        return code, out

    # First, before anything else in this process has seen the password: an error about the
    # connection that quotes the catalog and the driver's message.
    code, out = run("run", "--target", "broken")
    assert code != 0 and "cannot open the lake catalog" in out, out
    code, out = run("run")
    assert code == 1 and "marts.broken" in out  # a failure, so errors are written too
    assert f"target dev (duckdb postgres:postgres@{HOST}:5432/{catalog_db})" in out
    run("run", "-o", "json")
    run("ls")
    run("history")
    run("runs")
    run("logs", "1")
    run("plan")
    run("check")
    run("query", "select * from marts.totals")
    code, out = run("compile", "--target", "prod", "--dialect", "redshift")
    assert "target prod (postgres postgres@db.example.internal:5432/analytics)" in out
    assert '"analytics_raw"."shop__orders"' in out
    for out in said:
        assert PASSWORD not in out, out
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "gristmill.toml"]
    assert not [p for p in root.rglob("*") if PASSWORD in p.name]
    assert any(p.name == "state.sqlite" for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    with psycopg.connect(host=HOST, user="postgres", dbname=catalog_db) as con:
        tables = [r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert tables  # the catalog lives there
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"'.encode()).fetchall()
            assert PASSWORD not in repr(rows), table
