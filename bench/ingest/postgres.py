"""1,000,000 rows x 5 columns from PostgreSQL into the lake: Gristmill's postgres source against
DuckDB's postgres scanner alone writing the same table.

    .venv/bin/python -m bench.ingest.postgres [postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.ingest.common import gristmill_process, lake, python_process, report, report_processes, timed

DATABASE = os.environ.get("GRISTMILL_BENCH_DATABASE", "gristmill_bench")  # one per user of a shared server


def prepare(admin_url: str, rows: int) -> str:
    """A database with ``events(id, name, amount, ts, flag)``; returns its URL."""
    import psycopg  # here: the baseline process imports this module, and only needs DuckDB

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
    con = lake(folder, ("ducklake", "sqlite", "postgres"))
    con.execute(f"ATTACH '{_libpq(url)}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute("CREATE TABLE raw.events AS SELECT * FROM pg.public.events")
    con.close()


def _libpq(url: str) -> str:
    rest = url.split("://", 1)[1]
    user_host, dbname = rest.rsplit("/", 1)
    user, host = user_host.split("@")
    hostname, port = host.split(":")
    return f"host={hostname} port={port} user={user} dbname={dbname}"


def project(folder: Path, url: str) -> Path:
    root = folder / "project"
    (root / "sources").mkdir(parents=True)
    (root / "gristmill.toml").write_text('name = "bench"\n')
    (root / "sources" / "pg.yml").write_text(f"kind: postgres\nconnection: {url}\ntables:\n  events: {{}}\n")
    return root


ALONE = """
import os
import sys
from pathlib import Path
from bench.ingest.postgres import scanner
scanner(Path(sys.argv[1]), sys.argv[2])
"""


def gristmill(folder: Path, url: str) -> None:
    from gristmill.workspace import Workspace  # here, not at the top: the baseline must not pay for it

    result = Workspace(project(folder, url)).run()
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
        processes = [
            ("python + duckdb postgres scanner", *python_process(ALONE, folder / "raw2", url)),
            ("gristmill run (postgres source)", *gristmill_process(project(folder / "gm2", url))),
        ]
        report_processes(
            f"{rows:,} rows x 5 columns from PostgreSQL",
            processes,
            "python + duckdb postgres scanner",
            "gristmill <= 1.3x (CPU)",
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
