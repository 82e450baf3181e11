"""What one statement costs on DuckLake as its catalog grows, with the catalog in SQLite (as
Gristmill keeps it) and in a DuckDB file.

    .venv/bin/python -m bench.transform.catalog [--tables 1,50,100,200,300,600] [--no-inlining]
        [--per-commit 20]

For each size: the CPU of ``select count(*)`` on a 1,000-row table (mean of 10) and of a
1,000-row ``CREATE TABLE … AS`` (mean of 5 commits), each its own autocommit transaction, or
``--per-commit`` of them in one transaction (as Gristmill's commit groups do). ``--no-inlining``
attaches the lake with ``DATA_INLINING_ROW_LIMIT 0``, as Gristmill's engine does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gristmill._util.duckdb_extensions import connect


def probe(
    folder: Path, catalog: str, sizes: list[int], *, inlining: bool = True, per_commit: int = 1
) -> list[tuple[int, float, float]]:
    meta = f"sqlite:{folder}/catalog.sqlite" if catalog == "sqlite" else f"{folder}/catalog.ducklake"
    con = connect(extensions=("ducklake", "sqlite"))
    option = "" if inlining else ", DATA_INLINING_ROW_LIMIT 0"
    con.execute(f"ATTACH 'ducklake:{meta}' AS lake (DATA_PATH '{folder}/data/'{option})")
    con.execute("USE lake")
    con.execute("CREATE TABLE t0 AS SELECT range AS id FROM range(1000)")
    tables, found = 1, []
    for size in sizes:
        while tables < size:
            con.execute(
                f"CREATE TABLE f{tables} AS SELECT range AS id, range * 2 AS b, 'x' AS c,"
                " range::DOUBLE AS d, current_date AS e FROM range(100)"
            )
            tables += 1
        cpu = time.process_time()
        for _ in range(10):
            con.execute("SELECT count(*) FROM t0").fetchone()
        query = (time.process_time() - cpu) / 10
        cpu = time.process_time()
        for i in range(5):
            if per_commit > 1:
                con.execute("BEGIN")
            for j in range(per_commit):
                con.execute(f"CREATE TABLE probe_{size}_{i}_{j} AS SELECT * FROM t0")
            if per_commit > 1:
                con.execute("COMMIT")
        create = (time.process_time() - cpu) / (5 * per_commit)
        tables += 5 * per_commit
        found.append((size, query, create))
    con.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="1,50,100,200,300,600")
    parser.add_argument("--no-inlining", action="store_true", help="DATA_INLINING_ROW_LIMIT 0")
    parser.add_argument("--per-commit", type=int, default=1, help="CREATE TABLE statements per commit")
    args = parser.parse_args()
    sizes = [int(s) for s in args.tables.split(",")]
    print(f"{'catalog':<10}{'tables':>8}{'count(*) ms cpu':>18}{'CTAS ms cpu':>14}")
    for catalog in ("sqlite", "duckdb"):
        with tempfile.TemporaryDirectory() as folder:
            found = probe(
                Path(folder), catalog, sizes, inlining=not args.no_inlining, per_commit=args.per_commit
            )
            for size, query, create in found:
                print(f"{catalog:<10}{size:>8}{query * 1000:>18.1f}{create * 1000:>14.1f}")


if __name__ == "__main__":
    main()
