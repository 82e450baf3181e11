"""The floor on PostgreSQL: the 300-model project's statements sent raw over one psycopg connection.

Run as its own process (so it is timed like every tool, interpreter start included):

    .venv/bin/python bench/engines/pg_raw.py raw.json data/ postgresql://… [--only a,b,c]

The four sources land by binary COPY (pgpq's encoder over pyarrow's Parquet reader, the engine's
own way in), then each model is a ``CREATE TABLE … AS`` its SELECT rendered for PostgreSQL, and
each model's test query runs right after it, one autocommit statement each, in dependency order.
``--only`` rebuilds just the named models (``DROP TABLE`` + ``CREATE TABLE … AS``): the floor of
a change that concerns them. Never imports Gristmill.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from pgpq import ArrowToPostgresBinaryEncoder

SOURCE_TYPES = {"id": "bigint", "customer_id": "bigint", "amount": "float8", "category_code": "bigint"}


def land(con: psycopg.Connection, source: str, path: Path) -> None:
    table = pq.read_table(path)
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    columns = ", ".join(f'"{f.name}" {SOURCE_TYPES.get(f.name, "date")}' for f in table.schema)
    con.execute(f"CREATE TABLE raw.src__{source} ({columns})".encode())
    with con.cursor().copy(f"COPY raw.src__{source} FROM STDIN (FORMAT BINARY)".encode()) as copy:
        copy.write(encoder.write_header())
        for batch in table.to_batches():
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("statements", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("url")
    parser.add_argument("--only", default="", help="comma-separated models to rebuild (already built)")
    args = parser.parse_args()
    plan = json.loads(args.statements.read_text())
    only = set(filter(None, args.only.split(",")))
    failures = 0
    with psycopg.connect(args.url, autocommit=True) as con:
        if not only:
            for schema in ("raw", *dict.fromkeys(m["schema"] for m in plan["models"])):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}".encode())
            for source in plan["sources"]:
                land(con, source, args.data / f"{source}.parquet")
        for model in plan["models"]:
            if only and model["name"] not in only:
                continue
            if only:
                con.execute(f"DROP TABLE {model['name']}".encode())
            con.execute(f"CREATE TABLE {model['name']} AS {model['sql']}".encode())
            row = con.execute(model["test"].encode()).fetchone()
            failures += bool(row and row[0])
    if failures:
        raise SystemExit(f"{failures} test(s) failed")


if __name__ == "__main__":
    main()
