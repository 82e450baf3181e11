"""Kill -9 a run on the spark engine at the two points of a commit; a rerun must end where a
clean run does, and ``gc`` must drop what the killed process left.

- ``before_commit``: the step's new storage is written, the ledger has not committed. Nothing of
  it may show; its storage is an orphan only ``reclaim`` (``gristmill gc``) drops.
- ``after_ledger_commit``: the ledger committed, the metastore's views are not switched yet. The
  next open rolls the journal forward, so every reader then sees the committed step.

The project runs in child processes (each its own JVM, on the project's embedded Derby metastore
and DuckDB ledger); a DuckDB target of the same project, run in this process, is the reference."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.crashing import environment

pytestmark = [pytest.mark.services, pytest.mark.slow]

MODELS = {
    "sources/src.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
    "models/staging/orders.sql": "select id, customer, amount from raw.src__orders where amount > 1\n",
    "models/marts/revenue.sql": (
        "select customer, sum(amount) as total, count(*) as n from staging.orders group by customer\n"
    ),
    "models/marts/by_customer_v.sql": (
        "-- kind: view\nselect customer, count(*) as n from staging.orders group by customer\n"
    ),
    "models/marts/big.sql": "select customer, total from marts.revenue where total > 50\n",
    "checks/checks.yml": "staging.orders:\n  - unique: id\n  - not_null: id\n",
}
TABLES = ["raw.src__orders", "staging.orders", "marts.revenue", "marts.by_customer_v", "marts.big"]
TOML = (
    'name = "crash"\ntarget = "spark"\n\n[targets.duck]\nengine = "duckdb"\n\n'
    '[targets.spark]\nengine = "spark"\nmaster = "local[2]"\n'
    'conf = { "spark.sql.shuffle.partitions" = "2" }\n'
)
PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from pathlib import Path
from gristmill.cli.app import main
root, steps = Path(sys.argv[1]), json.loads(sys.argv[2])
report = []
for step in steps:
    if step[0] == "tables":
        tables = {}
        for name in step[1:]:
            out = io.StringIO()
            with redirect_stdout(out):
                try:
                    main(["query", f"select * from {name}", "--format", "json", "--project", str(root)])
                except SystemExit:
                    pass
            tables[name] = out.getvalue()
        report.append(tables)
    else:
        out, code = io.StringIO(), 0
        with redirect_stdout(out):
            try:
                main([*step, "--project", str(root)])
            except SystemExit as done:
                code = done.code or 0
        report.append({"code": code, "out": out.getvalue()})
print("PROBE" + json.dumps(report))
"""
"""Runs CLI steps (``["run"]``, ``["gc", …]``) and reads every table (``["tables", …]``) in one
process: one JVM start instead of one per step."""


def normal(rows: list[dict[str, object]]) -> list[str]:
    """Rows comparable across engines: sorted, numbers as floats (DuckDB prints a HUGEINT sum as
    text in JSON, Spark a BIGINT as a number)."""

    def value(v: object) -> object:
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    return sorted(json.dumps({k: value(v) for k, v in r.items()}, sort_keys=True) for r in rows)


def orders(version: int) -> str:
    lines = ["id,customer,amount"]
    for i in range(60 + 20 * version):
        lines.append(f"{i},{i % 7},{(i * 13) % 40 + version}")
    return "\n".join(lines) + "\n"


def killed(root: Path, point: str) -> None:
    """``gristmill run`` in a child process, killed -9 at ``point`` (``after_ledger_commit:2``)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.crashing", point, "run", "--project", str(root)],
        capture_output=True,
        text=True,
        env={**environment(), "PATH": "/usr/bin:/bin", "HOME": str(root)},
        timeout=900,
        check=False,
    )
    assert done.returncode == -9, done.stdout + done.stderr


def steps(root: Path, *plan: list[str]) -> list[dict[str, Any]]:
    """The ``plan``'s steps in one fresh process on the spark target: what each printed (a CLI
    step: its exit code and output; a read: every table as the target serves it)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), json.dumps(plan)],
        capture_output=True,
        text=True,
        env={**environment(), "PATH": "/usr/bin:/bin", "HOME": str(root)},
        timeout=900,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line is not None, done.stdout + done.stderr
    report: list[dict[str, Any]] = json.loads(line[5:])
    for step, result in zip(plan, report, strict=True):
        if step[0] == "tables":
            for name, text in result.items():
                result[name] = normal(json.loads(text)) if text.strip().startswith("[") else None
        else:
            assert result["code"] == 0, (step, result["out"])
    return report


READ = ["tables", *TABLES]


def storage_tables(root: Path) -> set[str]:
    """The Parquet folders of the warehouse: one per storage table."""
    warehouse = root / ".gristmill" / "targets" / "spark" / "spark" / "warehouse"
    return {p.name for p in warehouse.glob("*.db/_gm_*")}


def reference(cli: Cli, root: Path) -> dict[str, list[str]]:
    code, out = cli("run", "--target", "duck", project=root)
    assert code == 0, out
    found = {}
    for name in TABLES:
        code, out = cli(
            "query", f"select * from {name}", "--format", "json", "--target", "duck", project=root
        )
        assert code == 0, out
        found[name] = normal(json.loads(out))
    return found


def test_runs_killed_at_both_points_rerun_to_a_clean_runs_result(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    """Both crash points in turn on one project (each JVM start costs seconds, so the reads, the
    rerun and ``gc`` share processes): killed after the ledger's commit, then before a commit."""
    root = make_project({**MODELS, "data/orders.csv": orders(1)}, toml=TOML)
    _, old = steps(root, ["run"], READ)
    assert old == reference(cli, root)

    (root / "data" / "orders.csv").write_text(orders(2))
    new = reference(cli, root)
    # Killed once the second step's ledger commit is in, its views not switched yet: a fresh
    # process rolls the journal forward, so that step shows, and never half of a version.
    killed(root, "after_ledger_commit:2")
    (seen,) = steps(root, READ)
    for name in TABLES:
        assert seen[name] in (old[name], new[name]), name  # a whole version, never a mix
    assert seen != old

    # Killed before the rerun's first commit: nothing of that step shows, its storage is an
    # orphan that only gc drops.
    killed(root, "before_commit:1")
    before_gc = storage_tables(root)
    again, _, _, done = steps(root, READ, ["run"], ["gc", "--older-than", "0"], READ)
    assert again == seen
    assert done == new
    after = storage_tables(root)
    assert len(after) <= len(TABLES)  # one storage table per served table: nothing left over
    assert before_gc - after  # the killed step's storage was an orphan, and gc dropped it
