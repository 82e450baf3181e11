"""The floor: the same SELECTs and test queries sent straight to DuckDB, in dependency order.

Run as its own process (so it is timed like every tool, interpreter start included):

    .venv/bin/python bench/transform/raw.py raw.json data/ WORKDIR [--file | --duckdb-catalog]

Each source lands with ``CREATE TABLE … AS SELECT * FROM read_parquet(…)``, each model is a
``CREATE TABLE … AS`` its SELECT, and each model's test query runs right after it (one
autocommit statement each). By default the tables go into a fresh DuckLake (SQLite catalog +
Parquet files), as Gristmill stores them; ``--duckdb-catalog`` keeps DuckLake's catalog in a
DuckDB file instead of SQLite; ``--file`` writes a plain DuckDB database file, as dbt-duckdb and
SQLMesh do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))  # bench.* (run as a script from a work folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("statements", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--file", action="store_true", help="a DuckDB database file, not a DuckLake")
    parser.add_argument(
        "--duckdb-catalog", action="store_true", help="a DuckLake whose catalog is a DuckDB file, not SQLite"
    )
    args = parser.parse_args()
    plan = json.loads(args.statements.read_text())
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.file:
        import duckdb

        con = duckdb.connect(str(args.workdir / "warehouse.duckdb"))
    else:
        # The packaged extensions, loaded as Gristmill loads them but without importing it: the
        # floor must not pay for Gristmill's imports.
        from bench.ingest.plain_duckdb import connect

        lake = args.workdir.resolve()
        catalog = f"{lake}/catalog.ducklake" if args.duckdb_catalog else f"sqlite:{lake}/catalog.sqlite"
        con = connect(extensions=("ducklake", "sqlite"))
        con.execute(f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH '{lake}/data/')")
        con.execute("USE lake")
    for schema in ("raw", *dict.fromkeys(m["schema"] for m in plan["models"])):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for source in plan["sources"]:
        path = (args.data / f"{source}.parquet").resolve()
        con.execute(f"CREATE TABLE raw.src__{source} AS SELECT * FROM read_parquet('{path}')")
    failures = 0
    for model in plan["models"]:
        con.execute(f"CREATE TABLE {model['name']} AS {model['sql']}")
        row = con.execute(model["test"]).fetchone()
        failures += bool(row and row[0])
    con.close()
    if failures:
        raise SystemExit(f"{failures} test(s) failed")


if __name__ == "__main__":
    main()
