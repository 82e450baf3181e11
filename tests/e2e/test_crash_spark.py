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
root = Path(sys.argv[1])
tables = {}
for name in sys.argv[2:]:
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main(["query", f"select * from {name}", "--format", "json", "--project", str(root)])
        except SystemExit:
            pass
    tables[name] = out.getvalue()
print("PROBE" + json.dumps(tables))
"""


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


def spark(root: Path, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-m", "tests.support.spark_crashing", crash]
        if crash
        else [
            sys.executable,
            "-m",
            "gristmill",
        ]
    )
    return subprocess.run(
        [*command, *args, "--project", str(root)],
        capture_output=True,
        text=True,
        env={**environment(), "PATH": "/usr/bin:/bin", "HOME": str(root)},
        timeout=900,
        check=False,
    )


def probe(root: Path) -> dict[str, list[object]]:
    """Every table as the spark target serves it, read by a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), *TABLES],
        capture_output=True,
        text=True,
        env={**environment(), "PATH": "/usr/bin:/bin", "HOME": str(root)},
        timeout=600,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line is not None, done.stdout + done.stderr
    found = {}
    for name, text in json.loads(line[5:]).items():
        rows = json.loads(text) if text.strip().startswith("[") else None
        found[name] = normal(rows) if rows is not None else None
    return found  # type: ignore[return-value]


def storage_tables(root: Path) -> set[str]:
    """The Parquet folders of the warehouse: one per storage table."""
    warehouse = root / ".gristmill" / "targets" / "spark" / "spark" / "warehouse"
    return {p.name for p in warehouse.glob("*.db/_gm_*")}


def reference(cli: Cli, root: Path) -> dict[str, list[object]]:
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


@pytest.mark.parametrize(("point", "nth"), [("before_commit", 3), ("after_ledger_commit", 2)])
def test_a_killed_run_reruns_to_a_clean_runs_result(
    make_project: Callable[..., Path], cli: Cli, point: str, nth: int
) -> None:
    root = make_project({**MODELS, "data/orders.csv": orders(1)}, toml=TOML)
    done = spark(root, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    old = probe(root)
    assert old == reference(cli, root)

    (root / "data" / "orders.csv").write_text(orders(2))
    new = reference(cli, root)
    killed = spark(root, "run", crash=f"{point}:{nth}")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    seen = probe(root)  # a fresh process: opening rolls a switched-late commit forward
    for name in TABLES:
        assert seen[name] in (old[name], new[name]), name  # a whole version, never a mix
    if point == "after_ledger_commit":
        assert seen != old  # the committed steps show once the journal is rolled forward
    before_gc = storage_tables(root)

    done = spark(root, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    done = spark(root, "gc", "--older-than", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert probe(root) == new
    after = storage_tables(root)
    assert len(after) <= len(TABLES)  # one storage table per served table: nothing left over
    if point == "before_commit":
        assert before_gc - after  # the killed step's storage was an orphan, and gc dropped it
