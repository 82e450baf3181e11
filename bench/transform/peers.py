"""dbt-duckdb and SQLMesh, each in its own venv under bench/, run as their users run them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.transform.measure import Outcome, run
from bench.transform.spec import SOURCES

BENCH = Path(__file__).parents[1]


@dataclass(frozen=True)
class Peer:
    name: str
    command: str
    venv: Path
    packages: tuple[str, ...]
    distributions: tuple[str, ...]
    """Whose versions the report names."""

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def exe(self, name: str) -> Path:
        return self.venv / "bin" / name


# dbt-core 1.12 and later build a binary parser downloaded from GitHub releases at install time,
# so they cannot be installed from the package registry alone; 1.11 is the last pure-PyPI line.
DBT = Peer(
    "dbt",
    "dbt",
    BENCH / ".venv-dbt",
    ("dbt-core>=1.11,<1.12", "dbt-duckdb>=1.11,<1.12"),
    ("dbt-core", "dbt-duckdb", "duckdb"),
)
SQLMESH = Peer(
    "sqlmesh",
    "sqlmesh",
    BENCH / ".venv-sqlmesh",
    ("sqlmesh>=0.236,<0.237",),
    ("sqlmesh", "sqlglot", "duckdb"),
)
PEERS = {"dbt": DBT, "sqlmesh": SQLMESH}


def versions(peer: Peer) -> str:
    script = (
        "import importlib.metadata as m\n"
        f"print(' + '.join(d + ' ' + m.version(d) for d in {list(peer.distributions)!r}))"
    )
    done = subprocess.run([peer.python, "-c", script], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown versions"


def ensure(peer: Peer) -> str | None:
    """Create the peer's venv on first use. Returns why it cannot run, or None when it can."""
    tool = peer.exe(peer.command)
    if tool.exists():
        return None
    print(f"[setup] installing {' '.join(peer.packages)} into {peer.venv} (first run only) ...", flush=True)
    try:
        if not peer.python.exists():
            subprocess.run([sys.executable, "-m", "venv", peer.venv], check=True, capture_output=True)
        (peer.venv / ".gitignore").write_text("*\n")  # the venv stays out of version control
        done = subprocess.run(
            [peer.python, "-m", "pip", "install", "--quiet", *peer.packages], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as err:
        return f"cannot create {peer.venv}: {err}"
    if done.returncode != 0 or not tool.exists():
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        return "pip install failed: " + (errors[-1].strip() if errors else done.stderr.strip()[-200:])
    print(f"[setup] {peer.name}: {versions(peer)}", flush=True)
    return None


def load_sources(peer: Peer, project: Path, data: Path) -> None:
    """The four source tables in the peer's own DuckDB file (its own duckdb version): setup, untimed."""
    statements = ["CREATE SCHEMA raw"] + [
        f"CREATE TABLE raw.src__{s} AS SELECT * FROM read_parquet('{(data / f'{s}.parquet').resolve()}')"
        for s in SOURCES
    ]
    script = (
        "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\n"
        f"for statement in {statements!r}:\n    con.execute(statement)\ncon.close()\n"
    )
    subprocess.run([peer.python, "-c", script, project / "warehouse.duckdb"], check=True)


# -- dbt -------------------------------------------------------------------------------------------

# Each peer runs from the bytecode pip compiled into its venv.
PEER_ENV: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": None}
DBT_ENV = {**PEER_ENV, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DBT_USE_COLORS": "False"}


def dbt(project: Path, *args: str) -> Outcome:
    outcome = run([DBT.exe("dbt"), *args, "--project-dir", ".", "--profiles-dir", "."], project, env=DBT_ENV)
    results = project / "target" / "run_results.json"
    if args[0] in ("run", "test") and results.exists():
        found = json.loads(results.read_text())["results"]
        outcome.models = sum(1 for r in found if r["status"] in ("success", "pass"))
        if not outcome.ok:
            bad = [r for r in found if r["status"] not in ("success", "pass")]
            if bad:
                outcome.err = f"{len(bad)} failed, first: {bad[0]['unique_id']}: {bad[0].get('message')}"
    return outcome


def save_state(project: Path) -> None:
    (project / "state").mkdir(exist_ok=True)
    shutil.copy(project / "target" / "manifest.json", project / "state" / "manifest.json")


# -- SQLMesh ---------------------------------------------------------------------------------------


def sqlmesh(project: Path, *args: str) -> Outcome:
    return run([SQLMESH.exe("sqlmesh"), *args], project, env=PEER_ENV)


def physical_tables(project: Path) -> set[str]:
    """SQLMesh's versioned physical tables: one per model version it has built."""
    script = (
        "import duckdb, sys\ncon = duckdb.connect(sys.argv[1], read_only=True)\n"
        "rows = con.execute(\"select table_schema || '.' || table_name from information_schema.tables"
        " where starts_with(table_schema, 'sqlmesh__') and table_type = 'BASE TABLE'\").fetchall()\n"
        "print('\\n'.join(r[0] for r in rows))\n"
    )
    done = subprocess.run(
        [SQLMESH.python, "-c", script, project / "warehouse.duckdb"], capture_output=True, text=True
    )
    return set(done.stdout.split())


def categorised(output: str, model: str) -> str:
    """SQLMesh's category for the edited model, as its plan prints it."""
    for line in output.splitlines():
        if model in line and "(" in line:
            return line.strip().split("(", 1)[1].rstrip(")").strip()
    return ""
