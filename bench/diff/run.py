"""Data-diff benchmark: one 1M-row table compared between prod and dev (1% of rows changed) by
``gristmill diff``'s engine work, against a hand-written DuckDB FULL OUTER JOIN in the same run.

    .venv/bin/python -m bench.diff [--rows N] [--repeat N]

Builds a project under ``bench/.work-diff/`` (DuckLake storage, the default): a Parquet file of
``--rows`` rows x 6 columns lands as a source, a model copies it into prod; the model is edited so
that 1% of the rows get another ``amount`` and ``gristmill run --env dev`` builds dev (not timed).
Then, round-robin, each configuration opens the lake read-only and compares prod's and dev's
views of the model:

- ``gristmill``: ``gristmill.workspace.diffing.diff`` (the key probe for NULL and duplicated keys,
  the one-pass summary, a 10-row sample of each kind, both sides' schemas);
- ``gristmill, --sample 0``: the same without the sample (its second join);
- ``hand``: one hand-written statement: FULL OUTER JOIN on ``id``, ``IS DISTINCT FROM`` per
  column, FILTER counts — the least a diff must do, no duplicate check, no sample.

Both run in this process on the same DuckDB (the project's engine), so the ratio is of the SQL and
its orchestration, not of start-up. Wall clock and process CPU (every DuckDB thread) per round;
the table shows medians and the ratio of medians. Both must find the same counts.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from gristmill.cli.app import main as cli
from gristmill.engines import open_engine
from gristmill.workspace import Workspace
from gristmill.workspace.diffing import diff
from gristmill.workspace.types import DiffRequest

REPO = Path(__file__).parents[2]
WORK = REPO / "bench" / ".work-diff"
COLUMNS = ("customer_id", "amount", "status", "created_at", "note")
MODEL = "select id, customer_id, {amount} as amount, status, created_at, note from raw.bench__orders\n"
CHANGED = "case when id % 100 = 0 then amount + 1 else amount end"

HAND = (
    "SELECT count(*) FILTER (WHERE b.id IS NULL) AS added, count(*) FILTER (WHERE h.id IS NULL) AS removed, "
    "count(*) FILTER (WHERE b.id IS NOT NULL AND h.id IS NOT NULL AND ("
    + " OR ".join(f"b.{c} IS DISTINCT FROM h.{c}" for c in COLUMNS)
    + ")) AS changed, "
    + ", ".join(
        f"count(*) FILTER (WHERE b.{c} IS DISTINCT FROM h.{c} AND b.id IS NOT NULL AND h.id IS NOT NULL)"
        f" AS {c}"
        for c in COLUMNS
    )
    + " FROM lake.main.orders AS b FULL OUTER JOIN lake.main__dev.orders AS h ON b.id = h.id"
)


def _project(rows: int) -> Path:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "data").mkdir(parents=True)
    (WORK / "sources").mkdir()
    (WORK / "models" / "main").mkdir(parents=True)
    (WORK / "gristmill.toml").write_text('name = "diffbench"\n')
    (WORK / "sources" / "bench.yml").write_text(
        "kind: files\ntables:\n  orders: {path: data/orders.parquet}\n"
    )
    target = WORK / "data" / "orders.parquet"
    duckdb.sql(
        "COPY (SELECT i::BIGINT AS id, (i % 50000)::INTEGER AS customer_id,"
        " round((i % 997) * 1.25, 2)::DOUBLE AS amount, ['paid', 'open', 'refunded'][1 + i % 3] AS status,"
        " TIMESTAMP '2026-01-01' + to_seconds(i) AS created_at, 'note ' || (i % 1000) AS note"
        f" FROM range({rows}) t(i)) TO '{target}' (FORMAT parquet)"
    )
    model = WORK / "models" / "main" / "orders.sql"
    model.write_text("-- checks: [{unique: id}]\n" + MODEL.format(amount="amount"))
    _cli("run")
    model.write_text("-- checks: [{unique: id}]\n" + MODEL.format(amount=CHANGED))
    _cli("run", "--env", "dev")
    return WORK


def _cli(*args: str) -> None:
    try:
        cli([*args, "--project", str(WORK), "--quiet"])
    except SystemExit as done:
        if done.code:
            raise RuntimeError(f"gristmill {' '.join(args)} failed ({done.code})") from None


def _timed(work: Callable[[], dict[str, int]]) -> tuple[float, float, dict[str, int]]:
    wall, cpu = time.perf_counter(), time.process_time()
    found = work()
    return time.perf_counter() - wall, time.process_time() - cpu, found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.diff")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = _project(args.rows)
    workspace = Workspace(root)
    request = DiffRequest(table="main.orders", env="dev", against="prod", sample=10)

    def gristmill(sample: int = 10) -> dict[str, int]:
        result = diff(workspace, replace(request, sample=sample))
        return {
            "added": result.added,
            "removed": result.removed,
            "changed": result.changed,
            **result.column_changes,
        }

    def hand() -> dict[str, int]:
        engine = open_engine(workspace.project.settings, root, read_only=True)
        try:
            row: dict[str, Any] = engine.query(HAND).to_pylist()[0]
        finally:
            engine.close()
        return {k: int(v) for k, v in row.items()}

    configs = {"gristmill": gristmill, "gristmill, --sample 0": lambda: gristmill(0), "hand": hand}
    for work in configs.values():  # warm-up: file cache, imports
        work()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    answers: dict[str, dict[str, int]] = {}
    for _ in range(args.repeat):
        for name, work in configs.items():
            wall, cpu, answers[name] = _timed(work)
            times[name].append((wall, cpu))
    expected = args.rows // 100
    for name, found in answers.items():
        assert found["changed"] == expected and found["amount"] == expected, (name, found)
    print(f"{args.rows:,} rows, {expected:,} changed; medians of {args.repeat} rounds")
    print(f"{'configuration':<24} {'wall s':>8} {'cpu s':>8} {'wall ratio':>11} {'cpu ratio':>10}")
    base_wall = statistics.median(w for w, _ in times["hand"])
    base_cpu = statistics.median(c for _, c in times["hand"])
    for name, measured in times.items():
        wall = statistics.median(w for w, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        print(f"{name:<24} {wall:>8.3f} {cpu:>8.3f} {wall / base_wall:>11.2f} {cpu / base_cpu:>10.2f}")
    workspace.close()
