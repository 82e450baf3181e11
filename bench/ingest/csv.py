"""A 1,000,000-row CSV into the lake: Gristmill against DuckDB's own read_csv into a table, and a
file several times larger than the memory budget, loaded with peak memory measured.

    .venv/bin/python -m bench.ingest.csv [rows]
    .venv/bin/python -m bench.ingest.csv --memory [budget_mb]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.ingest.common import gristmill_process, lake, python_process, report, report_processes, timed
from bench.ingest.plain_duckdb import connect


def write_csv(path: Path, rows: int) -> None:
    con = connect(())
    con.execute(f"""
        COPY (SELECT i AS id, 'customer_' || (i % 20000) AS customer, i % 97 AS shop_id,
                     round((i % 100000) / 7.0, 2) AS amount, DATE '2024-01-01' + (i % 365)::int AS day,
                     i % 3 = 0 AS returned, 'a fairly ordinary note for row ' || i AS note
              FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')
    """)
    con.close()


def project(folder: Path, data: Path, memory_limit: str | None = None) -> Path:
    root = folder / "project"
    (root / "sources").mkdir(parents=True)
    engine = f'\n[engine]\nmemory_limit = "{memory_limit}"\n' if memory_limit else ""
    (root / "gristmill.toml").write_text(f'name = "bench"\n{engine}')
    (root / "sources" / "src.yml").write_text(f"kind: files\ntables:\n  sales: {{path: {data}}}\n")
    return root


def gristmill(root: Path) -> None:
    from gristmill.workspace import Workspace  # here, not at the top: the baseline must not pay for it

    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]


def duckdb_alone(folder: Path, data: Path) -> None:
    con = lake(folder)
    con.execute(f"CREATE TABLE raw.sales AS SELECT * FROM read_csv('{data}')")
    con.close()


ALONE = """
import sys
from pathlib import Path
from bench.ingest.plain_duckdb import lake
con = lake(Path(sys.argv[1]))
con.execute(f"CREATE TABLE raw.sales AS SELECT * FROM read_csv('{sys.argv[2]}')")
con.close()
"""


def speed(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "sales.csv"
        write_csv(data, rows)
        root = project(folder / "gm", data)
        results = [
            ("duckdb read_csv -> lake table", *timed(lambda: duckdb_alone(folder / "raw", data))),
            ("gristmill run (files source)", *timed(lambda: gristmill(root))),
        ]
        report(
            f"{rows:,}-row CSV ({data.stat().st_size / 1e6:.0f} MB) into the lake",
            results,
            "duckdb read_csv -> lake table",
            "gristmill <= 1.2x",
        )
        processes = [
            ("python + duckdb read_csv -> lake table", *python_process(ALONE, folder / "raw2", data)),
            ("gristmill run (files source)", *gristmill_process(project(folder / "gm2", data))),
        ]
        report_processes(
            f"{rows:,}-row CSV into the lake",
            processes,
            "python + duckdb read_csv -> lake table",
            "gristmill <= 1.3x (CPU)",
        )


RUNNER = """
import resource, sys
from pathlib import Path
from gristmill.workspace import Workspace
result = Workspace(Path(sys.argv[1])).run()
assert result.ok, [s.error for s in result.steps]
print(result.steps[0].load.rows_written, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def memory(budget_mb: int) -> None:
    """Load a CSV five times the budget with DuckDB limited to half of it; report peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "big.csv"
        rows = 1_000_000
        write_csv(data, rows)
        while data.stat().st_size < budget_mb * 5 * 1024 * 1024:
            rows *= 2
            write_csv(data, rows)
        root = project(folder / "gm", data, memory_limit=f"{budget_mb // 2}MB")
        done = subprocess.run([sys.executable, "-c", RUNNER, str(root)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        written, peak = (int(x) for x in done.stdout.strip().splitlines()[-1].split())
        size = data.stat().st_size / 1024 / 1024
        print(
            f"\nbounded memory: {size:,.0f} MB CSV ({written:,} rows), budget {budget_mb} MB "
            f"(DuckDB memory_limit {budget_mb // 2} MB)"
        )
        print(
            f"peak RSS {peak} MB = {peak / budget_mb:.2f} of the budget;"
            f" file / budget = {size / budget_mb:.1f}"
        )
        print("within budget" if peak <= budget_mb else "OVER BUDGET")


if __name__ == "__main__":
    if "--memory" in sys.argv:
        rest = [a for a in sys.argv[1:] if a != "--memory"]
        memory(int(rest[0]) if rest else 1024)
    else:
        speed(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
