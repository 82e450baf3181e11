"""1,000,000 rows x 5 columns from PostgreSQL into the lake: Gristmill's postgres source against
DuckDB's postgres scanner alone writing the same table.

    .venv/bin/python -m bench.ingest.postgres [postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import psycopg

from bench.ingest.common import lake, report, timed
from gristmill._util.duckdb_extensions import load
from gristmill.workspace import Workspace

DATABASE = "gristmill_bench"


def prepare(admin_url: str, rows: int) -> str:
    """A database with ``events(id, name, amount, ts, flag)``; returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            con.execute(f"CREATE DATABASE {DATABASE}")
    url = admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as con:
        have = con.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'events'").fetchone()
        count = con.execute("SELECT count(*) FROM events").fetchone()[0] if have and have[0] else -1
        if count != rows:
            con.execute("DROP TABLE IF EXISTS events")
            con.execute(
                "CREATE TABLE events (id bigint primary key, name text, amount float8, ts timestamptz,"
                " flag bool)"
            )
            con.execute(
                "INSERT INTO events SELECT i, 'name_' || i, i * 0.5, now() - i * interval '1 second',"
                " i %% 2 = 0 FROM generate_series(1, %s) i",
                [rows],
            )
            con.execute("VACUUM ANALYZE events")
    return url


def scanner(folder: Path, url: str) -> None:
    con = lake(folder)
    load(con, "postgres")
    con.execute(f"ATTACH '{_libpq(url)}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute("CREATE TABLE raw.events AS SELECT * FROM pg.public.events")
    con.close()


def _libpq(url: str) -> str:
    rest = url.split("://", 1)[1]
    user_host, dbname = rest.rsplit("/", 1)
    user, host = user_host.split("@")
    hostname, port = host.split(":")
    return f"host={hostname} port={port} user={user} dbname={dbname}"


def gristmill(folder: Path, url: str) -> None:
    root = folder / "project"
    (root / "sources").mkdir(parents=True)
    (root / "gristmill.toml").write_text('name = "bench"\n')
    (root / "sources" / "pg.yml").write_text(f"kind: postgres\nconnection: {url}\ntables:\n  events: {{}}\n")
    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]


def main(admin_url: str, rows: int = 1_000_000) -> None:
    url = prepare(admin_url, rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = [
            ("duckdb postgres scanner -> lake", *timed(lambda: scanner(folder / "raw", url))),
            ("gristmill run (postgres source)", *timed(lambda: gristmill(folder / "gm", url))),
        ]
        report(
            f"{rows:,} rows x 5 columns from PostgreSQL into the lake",
            results,
            "duckdb postgres scanner -> lake",
            "gristmill <= 1.2x",
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
