"""Small models share DuckLake commits (one snapshot and one catalog rebuild per group instead of
per model), a failing model does not take its group-mates down, and model tables do not grow the
SQLite catalog's schema (no inlined-data table per table)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.workspace import Workspace
from tests.conftest import Cli

MODELS = {f"models/marts/m{i:02}.sql": f"select {i} as id, 'x' as label\n" for i in range(12)}


def _catalog(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".gristmill" / "catalog.sqlite")


def _snapshots(root: Path) -> int:
    with _catalog(root) as db:
        return int(db.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()[0])


def test_small_models_publish_together_in_few_snapshots(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(MODELS)
    code, out = cli("run", project=root)
    assert code == 0, out
    # One snapshot per model before (12 builds + the switch); now the builds share commits.
    assert _snapshots(root) <= 4
    values = Workspace(root).query(
        "select sum(id) as s from ("
        + " union all ".join(f"select id from marts.m{i:02}" for i in range(12))
        + ")"
    )
    assert values.column("s").to_pylist() == [sum(range(12))]


def test_a_failing_model_does_not_unpublish_its_group_mates(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **MODELS,
        # Runs after m05 (it reads it), in the same shared transaction, and fails in the engine:
        # the rollback takes m05 and whatever else shared the transaction with it.
        "models/marts/bad.sql": "select cast(label || 'z' as integer) as id from marts.m05\n",
        "models/marts/after_bad.sql": "select * from marts.bad\n",
        "models/marts/after_m05.sql": "select id + 1 as id from marts.m05\n",
    }
    root = make_project(files)
    code, out = cli("run", project=root)
    assert code != 0
    assert "xz" in out  # Conversion Error: Could not convert string 'xz' to INT32
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        status = dict(
            db.execute("SELECT asset, status FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)")
        )
    assert status.pop("marts.bad") == "failed"
    assert status.pop("marts.after_bad") == "upstream_failed"
    assert set(status.values()) == {"success"}, status
    workspace = Workspace(root)
    for i in range(12):
        assert workspace.query(f"select id from marts.m{i:02}").column("id").to_pylist() == [i]
    assert workspace.query("select id from marts.after_m05").column("id").to_pylist() == [6]
    # A rerun has nothing left to build but the failed model and its reader.
    (root / "models/marts/bad.sql").write_text("select id from marts.m05\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        built = {
            row[0]
            for row in db.execute(
                "SELECT asset FROM steps WHERE run_id = (SELECT max(run_id) FROM runs) AND action = 'build'"
            )
        }
    assert built == {"marts.bad", "marts.after_bad"}


def test_model_tables_do_not_grow_the_catalog_schema(make_project: Callable[..., Path], cli: Cli) -> None:
    """With DuckLake's default data inlining every table created adds a table to the SQLite catalog,
    which every new connection parses: statements got slower with every model (74 -> 287 ms per
    CREATE TABLE … AS between 1 and 300 tables)."""
    root = make_project(MODELS)
    code, out = cli("run", project=root)
    assert code == 0, out
    with _catalog(root) as db:
        inlined = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ducklake_inlined_data_%'")
        ]
        kept = {
            r[0]
            for r in db.execute(
                "SELECT s.schema_name FROM ducklake_metadata m"
                " JOIN ducklake_schema s ON s.schema_id = m.scope_id"
                " WHERE m.key = 'data_inlining_row_limit' AND m.scope = 'schema' AND s.end_snapshot IS NULL"
            )
        }
    # Model tables are written whole: their schemas go without inlining; the bookkeeping tables
    # (versions, pointers) and source tables keep DuckLake's default.
    assert kept and all(name.startswith("_gm_") for name in kept), kept
    assert len(inlined) <= 4, inlined
    # and the version rows stay in the catalog, not a Parquet file each
    (root / "models/marts/m00.sql").write_text("select 100 as id, 'y' as label\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert not sorted((root / ".gristmill" / "lake").rglob("table_versions/*.parquet"))


@pytest.mark.slow  # waits out a time limit
def test_a_model_past_its_time_limit_leaves_its_group_mates_published(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **MODELS,
        # Interrupted mid-statement, inside the transaction m05 (at least) shares with it.
        "models/marts/slow.sql": "select count(*) as n from marts.m05, range(1000000000000) t(i)\n",
    }
    root = make_project(files, toml='name = "t"\n\n[run]\nstep_timeout = "3s"\n')
    code, out = cli("run", project=root)
    assert code == 1
    assert "timed out after 3s" in out
    workspace = Workspace(root)
    for i in range(12):
        assert workspace.query(f"select id from marts.m{i:02}").column("id").to_pylist() == [i]


def test_a_cancelled_run_publishes_only_what_committed_before_the_stop(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    """Steps of the open group when the stop comes never commit: recorded cancelled, no view; every
    step recorded success is served."""
    files = {
        **MODELS,
        "models/marts/slow.sql": "select count(*) as n from marts.m05, range(1000000000000) t(i)\n",
    }
    root = make_project(files)
    state = root / ".gristmill" / "state.sqlite"
    with subprocess.Popen(
        [str(Path(sys.executable).parent / "gristmill"), "run", "--project", str(root), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        deadline = time.monotonic() + 120
        run_id = None
        while run_id is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if state.exists():
                with sqlite3.connect(state) as db:
                    try:
                        found = db.execute(
                            "SELECT run_id FROM step_logs WHERE asset = 'marts.slow' LIMIT 1"
                        ).fetchone()
                    except sqlite3.OperationalError:
                        found = None
                run_id = found[0] if found else None
        assert run_id is not None, "the slow model never started"
        code, out = cli("cancel", str(run_id), project=root)
        assert code == 0, out
        run.communicate(timeout=120)
    with sqlite3.connect(state) as db:
        status = dict(db.execute("SELECT asset, status FROM steps WHERE run_id = ?", (run_id,)))
    assert status["marts.slow"] == "cancelled"
    workspace = Workspace(root)
    for asset, outcome in status.items():
        if asset == "marts.slow":
            continue
        if outcome == "success":
            assert workspace.query(f"select count(*) as n from {asset}").column("n").to_pylist() == [1]
        else:
            assert outcome == "cancelled", (asset, outcome)
    # and a rerun builds what the cancel left unbuilt
    (root / "models/marts/slow.sql").write_text("select count(*) as n from marts.m05\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert workspace.query("select n from marts.slow").column("n").to_pylist() == [1]


def test_retry_of_a_run_that_died_rebuilds_what_it_recorded_but_never_committed(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    """A killed run may have recorded steps as succeeded that waited for their group's commit:
    `gristmill retry` takes them again, and the planner skips what did commit."""
    from gristmill.state.records import StepRecord

    root = make_project(MODELS)
    assert cli("run", project=root)[0] == 0
    (root / "models/marts/m00.sql").write_text("select 100 as id, 'x' as label\n")
    # What a run killed before its group's commit leaves: m00 and m01 recorded as succeeded,
    # nothing of them in the lake, the run still 'running' under a pid that is gone.
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        run_id = int(
            db.execute(
                "INSERT INTO runs (command, selection, status, pid, started_at) "
                "VALUES ('run', '', 'running', 999999999, '2026-01-01T00:00:00+00:00') RETURNING run_id"
            ).fetchone()[0]
        )
    from gristmill.state.history import SQLiteHistory

    history = SQLiteHistory(root / ".gristmill" / "state.sqlite")
    try:
        history.runs.record_steps(
            run_id,
            [StepRecord(f"marts.m0{i}", "model", "build", "success", "changed") for i in (0, 1)],
            [],
        )
    finally:
        history.close()
    code, out = cli("retry", str(run_id), project=root)
    assert code == 0, out
    assert Workspace(root).query("select id from marts.m00").column("id").to_pylist() == [100]
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        retried = dict(
            db.execute(
                "SELECT asset, action FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)"
            ).fetchall()
        )
    assert retried == {"marts.m00": "build", "marts.m01": "skip"}, out  # m01 had committed
