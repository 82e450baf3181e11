"""The Gristmill side: a project on one DuckDB file that lands the two Parquet files, the 15
checks in Gristmill's grammar, and ``gristmill check`` measured as its user runs it.

The checks are declared only after the (unmeasured) load: declared before, they would run during
``gristmill run`` and, failing, keep the landed tables from being published.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from bench.quality.spec import (
    AMOUNT,
    CATEGORIES,
    CHECKS,
    CUSTOM_CONDITION,
    CUSTOM_NAME,
    MAX_AGE_DAYS,
    MEAN_AMOUNT,
    QUANTITY,
    STATUSES,
    Scale,
)
from bench.transform.measure import Outcome, run

REPO = Path(__file__).parents[2]
GRISTMILL = REPO / ".venv" / "bin" / "gristmill"
ORDERS = "raw.bench__orders"
CUSTOMERS = "raw.bench__customers"

Env = dict[str, str | None]


def checks_yaml(scale: Scale) -> str:
    low, high = scale.row_count
    custom = f"select * from this where {CUSTOM_CONDITION}"
    return (
        f"{ORDERS}:\n"
        "  - not_null: [id, customer_id, email]\n"
        "  - unique: id\n"
        f"  - accepted_values: {{column: category, values: [{', '.join(CATEGORIES)}]}}\n"
        f"  - accepted_values: {{column: status, values: [{', '.join(STATUSES)}]}}\n"
        f"  - range: {{column: amount, min: {AMOUNT[0]}, max: {AMOUNT[1]}}}\n"
        f"  - range: {{column: quantity, min: {QUANTITY[0]}, max: {QUANTITY[1]}}}\n"
        "  - format: {column: email, as: email}\n"
        f"  - row_count: {{min: {low}, max: {high}}}\n"
        f"  - freshness: {{column: created_at, max_age: {MAX_AGE_DAYS}d}}\n"
        f"  - relationships: {{column: customer_id, to: {CUSTOMERS}.id}}\n"
        "  - duplicates: [customer_id, created_at]\n"
        f"  - aggregate: {{column: amount, function: mean, min: {MEAN_AMOUNT[0]}, max: {MEAN_AMOUNT[1]}}}\n"
        f'  - query: {{sql: "{custom}", name: {CUSTOM_NAME}}}\n'
    )


def create(project: Path, data: dict[str, Path]) -> None:
    """The project folder with its source (reading the Parquet files where they are); no checks yet."""
    (project / "sources").mkdir(parents=True)
    (project / "gristmill.toml").write_text('name = "quality_bench"\n\n[storage]\nformat = "duckdb"\n')
    tables = [f"  {name}: {{path: {path.resolve()}}}" for name, path in data.items()]
    (project / "sources" / "bench.yml").write_text("kind: files\ntables:\n" + "\n".join(tables) + "\n")


def load(project: Path, scale: Scale, env: Env) -> Outcome:
    """Land both tables (``gristmill run``), then declare the checks."""
    outcome = run([GRISTMILL, "run"], project, env)
    (project / "checks").mkdir(exist_ok=True)
    (project / "checks" / "bench.yml").write_text(checks_yaml(scale))
    return outcome


def email_pattern(env: Env) -> str:
    """The pattern of ``format: {as: email}`` in the Gristmill being measured: the hand-written
    plans and Soda match the same one, against the whole value."""
    code = "from gristmill.project.checks import FORMATS; print(FORMATS['email'])"
    done = run([REPO / ".venv" / "bin" / "python", "-c", code], REPO, env)
    if not done.ok:
        raise RuntimeError(f"cannot read Gristmill's e-mail pattern: {done.failure()}")
    return done.out.strip()


def database(project: Path) -> Path:
    return project / ".gristmill" / "warehouse.duckdb"


def check(project: Path, env: Env) -> Outcome:
    """``gristmill check``. It exits 1 when an error check fails, as ten do here: whether it worked
    is judged by the results it recorded (``results``)."""
    return run([GRISTMILL, "check"], project, env)


def last_run(project: Path) -> int | None:
    """The newest run with check results, if any."""
    try:
        db = sqlite3.connect(project / ".gristmill" / "state.sqlite")
        try:
            return db.execute("SELECT max(run_id) FROM check_results").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def results(project: Path) -> tuple[dict[str, bool], list[str]]:
    """The last run's check results from the state store (``check_results``): check key ->
    failed, and the names that matched no check (or one already matched)."""
    db = sqlite3.connect(project / ".gristmill" / "state.sqlite")
    try:
        rows = db.execute(
            "SELECT check_name, status FROM check_results"
            " WHERE run_id = (SELECT max(run_id) FROM check_results)"
        ).fetchall()
    finally:
        db.close()
    found: dict[str, bool] = {}
    unknown: list[str] = []
    for name, status in rows:
        matches = [c.key for c in CHECKS if _normal(name).startswith(_normal(c.gristmill))]
        if len(matches) != 1 or matches[0] in found:
            unknown.append(name)
        else:
            found[matches[0]] = status != "pass"
    return found, unknown


def _normal(name: str) -> str:
    return re.sub(r"\s+", "", name)
