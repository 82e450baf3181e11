"""Run history: what each run did is recorded, and runs of dead processes do not stay 'running'."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gristmill.state import SQLiteHistory as History
from gristmill.state import StepRecord
from gristmill.workspace import Workspace


def test_runs_steps_and_check_results_are_recorded(demo: Path) -> None:
    Workspace(demo).run()
    Workspace(demo).run(["dim_date"])
    db = sqlite3.connect(demo / ".gristmill" / "state.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    runs = db.execute("select run_id, status, summary from runs order by run_id").fetchall()
    assert [(r[0], r[1]) for r in runs] == [(1, "success"), (2, "success")]
    assert json.loads(runs[0][2])["built"] == 19 and json.loads(runs[1][2])["skipped"] == 1
    rows = dict(db.execute("select asset, rows from steps where run_id = 1").fetchall())
    assert rows["raw.chinook_export__invoice_line"] == 2240
    seconds = db.execute("select min(seconds) from steps where run_id = 1").fetchone()[0]
    assert seconds > 0
    checks = db.execute(
        "select count(*), sum(status = 'pass') from check_results where run_id = 1"
    ).fetchone()
    assert checks[0] == checks[1] > 20


def test_a_run_left_running_by_a_dead_process_is_marked_failed(tmp_path: Path) -> None:
    history = History(tmp_path / "state.sqlite")
    run_id = history.runs.start("run", "")
    history.database.connection.execute("update runs set pid = 2147483646 where run_id = ?", (run_id,))
    history.runs.record_steps(run_id, [StepRecord("a.b", "table", "build", "success", "new")], [])
    assert History(tmp_path / "state.sqlite").runs.mark_abandoned() == 1
    [run] = History(tmp_path / "state.sqlite").runs.recent()
    assert run.status == "failed" and "died" in run.summary["error"]


def test_migrations_are_numbered_and_idempotent(tmp_path: Path) -> None:
    History(tmp_path / "s.sqlite").close()
    History(tmp_path / "s.sqlite").close()
    version = sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA user_version").fetchone()[0]
    from gristmill.state.history.schema import MIGRATIONS

    assert version == len(MIGRATIONS)


def test_check_history_and_metrics_are_kept_per_environment(demo: Path) -> None:
    Workspace(demo).run()
    Workspace(demo).run(["+dim_customer"], env="dev", full_refresh=True)
    checks, metrics = Workspace(demo).quality_history(["marts.dim_customer"], env="dev")
    assert {c.run_id for c in checks} == {2} and all(c.env == "dev" for c in checks)
    assert {m.run_id for m in metrics} == {2}
    prod, _ = Workspace(demo).quality_history(["marts.dim_customer"])
    assert {c.run_id for c in prod} == {1}
