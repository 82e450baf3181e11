"""Platform overhead of `gristmill run` against the raw engine, measured in the same process.

A synthetic project: one 100k-row Parquet source and N table models, each reading an earlier
one. We time (1) a first `run` through Gristmill — parse, validate, plan, build, check, record;
(2) the same CREATE TABLE statements sent straight to DuckDB over a fresh DuckLake, no
Gristmill in the path; (3) a no-op rerun. The ratio and the per-model overhead are what count.

    .venv/bin/python -m bench.overhead [--models 200]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill._util.duckdb_extensions import connect
from gristmill.workspace import Workspace


def make_project(root: Path, models: int, rows: int) -> list[tuple[str, str]]:
    (root / "data").mkdir(parents=True)
    (root / "sources").mkdir()
    (root / "gristmill.toml").write_text('name = "bench"\n')
    (root / "sources" / "src.yml").write_text("kind: files\ntables:\n  events: {path: data/events.parquet}\n")
    table = pa.table(
        {
            "id": pa.array(range(rows)),
            "grp": pa.array([i % 97 for i in range(rows)]),
            "amount": pa.array([float(i % 1000) for i in range(rows)]),
        }
    )
    pq.write_table(table, root / "data" / "events.parquet")
    rng = random.Random(7)
    statements: list[tuple[str, str]] = []
    for i in range(models):
        parent = "raw.src__events" if i == 0 else f"marts.m{rng.randrange(max(0, i - 10), i):04d}"
        sql = f"select id, grp, amount + {i} as amount from {parent} where id % 100 != {i % 100}\n"
        path = root / "models" / "marts" / f"m{i:04d}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
        statements.append((f"marts.m{i:04d}", sql))
    return statements


def timed(action: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def raw_engine(root: Path, statements: list[tuple[str, str]]) -> None:
    lake = root / "raw-lake"
    lake.mkdir()
    con = connect(extensions=("ducklake", "sqlite"))
    con.execute(f"ATTACH 'ducklake:sqlite:{lake}/catalog.sqlite' AS lake (DATA_PATH '{lake}/data/')")
    con.execute("USE lake")
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA marts")
    con.execute(
        f"CREATE TABLE raw.src__events AS SELECT * FROM read_parquet('{root}/project/data/events.parquet')"
    )
    for name, sql in statements:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        statements = make_project(root, args.models, args.rows)
        raw_wall, raw_cpu = timed(lambda: raw_engine(Path(folder), statements))
        result: list[object] = []
        run_wall, run_cpu = timed(lambda: result.append(Workspace(root).run()))
        assert getattr(result[0], "ok", False), "the benchmark project failed to build"
        noop_wall, noop_cpu = timed(lambda: Workspace(root).run())
    n = args.models
    print(f"{n} models over {args.rows:,} rows (DuckDB + DuckLake, this machine, one run)\n")
    rows = [
        ("raw DuckDB statements", raw_wall, raw_cpu),
        ("gristmill run (first)", run_wall, run_cpu),
        ("gristmill run (nothing changed)", noop_wall, noop_cpu),
    ]
    print(f"{'':32}{'wall s':>10}{'cpu s':>10}{'vs raw':>10}")
    for label, wall, cpu in rows:
        print(f"{label:32}{wall:>10.2f}{cpu:>10.2f}{wall / raw_wall:>10.2f}")
    print(
        f"\noverhead per model: {(run_wall - raw_wall) / n * 1000:.1f} ms wall, "
        f"{(run_cpu - raw_cpu) / n * 1000:.1f} ms cpu; no-op run: {noop_wall / n * 1000:.2f} ms per model"
    )


if __name__ == "__main__":
    main()
