"""Soda Core v3 (SodaCL, Apache-2.0) in its own venv, ``bench/.venv-soda``: the same 15 checks,
scanned from its own DuckDB file (soda-core-duckdb 3.x pins duckdb<1.1), with failed-row samples
on (the default) and off (``samples limit: 0`` on every check that samples).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.quality.spec import (
    AMOUNT,
    CATEGORIES,
    CUSTOM_CONDITION,
    CUSTOM_NAME,
    MAX_AGE_DAYS,
    MEAN_AMOUNT,
    QUANTITY,
    STATUSES,
    Scale,
)
from bench.transform.measure import Outcome, run
from bench.transform.peers import BENCH, PEER_ENV, Peer, ensure, versions

SODA = Peer(
    "soda",
    "soda",
    BENCH / ".venv-soda",
    ("soda-core-duckdb>=3,<4",),
    ("soda-core", "soda-core-duckdb", "duckdb"),
)
SCAN = Path(__file__).with_name("soda_scan.py")


def setup() -> tuple[str | None, str]:
    """Install Soda on first use: (why it cannot run or None, its versions)."""
    problem = ensure(SODA)
    return problem, "" if problem else versions(SODA)


def create_database(path: Path, data: dict[str, Path]) -> None:
    """``orders`` and ``customers`` in a DuckDB file written by the venv's own duckdb (untimed)."""
    path.unlink(missing_ok=True)
    statements = [
        f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}')" for name, path in data.items()
    ]
    script = (
        "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\n"
        f"for statement in {statements!r}:\n    con.execute(statement)\ncon.close()\n"
    )
    done = subprocess.run([SODA.python, "-c", script, path], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cannot create {path}: {done.stderr.strip()[-500:]}")


def checks_yaml(scale: Scale, email: str, *, samples: bool) -> str:
    """SodaCL for the 15 checks, each named by its key; ``samples`` False adds ``samples limit: 0``
    to the checks that fetch failed rows."""
    low, high = scale.row_count
    # Soda puts the pattern into the SQL text as it is: quotes are doubled here. It uses
    # regexp_matches, so the pattern is anchored to match the whole value.
    regex = json.dumps("^" + email.replace("'", "''") + "$")
    rows: list[tuple[str, str, list[str]]] = [
        ("missing_count(id) = 0", "not_null(id)", []),
        ("missing_count(customer_id) = 0", "not_null(customer_id)", []),
        ("missing_count(email) = 0", "not_null(email)", []),
        ("duplicate_count(id) = 0", "unique(id)", []),
        (
            "invalid_count(category) = 0",
            "accepted_values(category)",
            [f"valid values: [{', '.join(CATEGORIES)}]"],
        ),
        ("invalid_count(status) = 0", "accepted_values(status)", [f"valid values: [{', '.join(STATUSES)}]"]),
        (
            "invalid_count(amount) = 0",
            "range(amount)",
            [f"valid min: {AMOUNT[0]}", f"valid max: {AMOUNT[1]}"],
        ),
        (
            "invalid_count(quantity) = 0",
            "range(quantity)",
            [f"valid min: {QUANTITY[0]}", f"valid max: {QUANTITY[1]}"],
        ),
        ("invalid_count(email) = 0", "format(email)", [f"valid regex: {regex}"]),
        (f"row_count between {low} and {high}", "row_count", []),
        (f"freshness(created_at) < {MAX_AGE_DAYS}d", "freshness(created_at)", []),
        ("values in (customer_id) must exist in customers (id)", "relationships(customer_id)", []),
        ("duplicate_count(customer_id, created_at) = 0", "duplicates(customer_id,created_at)", []),
        (f"avg(amount) between {MEAN_AMOUNT[0]} and {MEAN_AMOUNT[1]}", "mean(amount)", []),
    ]
    whole_table = ("row_count", "freshness(created_at)", "mean(amount)")  # these take no samples
    lines = ["checks for orders:"]
    for check, name, options in rows:
        lines += [f"  - {check}:", f"      name: {name}"] + [f"      {o}" for o in options]
        if name not in whole_table and not samples:
            lines.append("      samples limit: 0")
    lines += [
        "  - failed rows:",
        f"      name: custom({CUSTOM_NAME})",
        f"      fail query: select * from orders where {CUSTOM_CONDITION}",
    ]
    if not samples:
        lines.append("      samples limit: 0")
    return "\n".join(lines) + "\n"


def write(folder: Path, database: Path, scale: Scale, email: str) -> dict[bool, tuple[Path, Path]]:
    """The configuration and both checks files; samples on/off -> (configuration, checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    configuration = folder / "configuration.yml"
    configuration.write_text(f"data_source bench:\n  type: duckdb\n  path: {database}\n  read_only: true\n")
    # Soda reads its global settings from $HOME/.soda/config.yml: the scans get a home of their own
    # in which usage statistics are off (no network calls from the measured process).
    (folder / ".soda").mkdir(exist_ok=True)
    (folder / ".soda" / "config.yml").write_text("send_anonymous_usage_stats: false\n")
    found = {}
    for samples in (True, False):
        checks = folder / ("checks.yml" if samples else "checks_no_samples.yml")
        checks.write_text(checks_yaml(scale, email, samples=samples))
        found[samples] = (configuration, checks)
    return found


def scan(files: tuple[Path, Path]) -> Outcome:
    """One scan in a fresh process of the venv's Python; ``note`` holds soda_scan.py's JSON."""
    configuration, checks = files
    env = {**PEER_ENV, "HOME": str(checks.parent)}
    outcome = run([SODA.python, SCAN, configuration, checks], checks.parent, env=env)
    lines = outcome.out.strip().splitlines()
    outcome.note = lines[-1] if outcome.ok and lines else ""
    return outcome


def answer(outcome: Outcome) -> tuple[dict[str, bool], int, list[str]]:
    """Check name -> failed, queries sent and error messages, from the scan's output."""
    found = json.loads(outcome.note)
    failed = {name: result != "pass" for name, result in found["outcomes"].items()}
    return failed, found["queries"], found["errors"]
