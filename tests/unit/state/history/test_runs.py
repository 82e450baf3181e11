"""Runs and step attempts: recorded and read back, cancelled from another handle, abandoned when
their process died."""

from __future__ import annotations

from pathlib import Path

from gristmill.state import SQLiteHistory
from gristmill.state.records import LogRecord, StepRecord


def test_a_run_is_recorded_and_read_back(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    run_id = history.runs.start("run", "+orders")
    step = StepRecord("marts.orders", "table", "build", "success", "new", rows=3, events=("schema: +id",))
    log = LogRecord(run_id, "marts.orders", 1, 0, "2024-01-01T00:00:00", "INFO", "Built Orders")
    history.runs.record_steps(run_id, [step], [], [], [log])
    history.runs.finish(run_id, "success", 1.5, {"built": 1})

    [run] = history.runs.recent()
    assert (run.run_id, run.command, run.selection, run.status, run.summary) == (
        run_id,
        "run",
        "+orders",
        "success",
        {"built": 1},
    )
    assert history.runs.get(run_id) == run and history.runs.get(run_id + 1) is None
    [stored] = history.runs.steps(run_id)
    assert (stored.asset, stored.rows, stored.events) == ("marts.orders", 3, ("schema: +id",))
    assert [g.message for g in history.runs.step_logs(run_id, grep="orders")] == ["Built Orders"]
    assert history.runs.step_logs(run_id, grep="nothing") == []
    assert history.runs.last_build()["marts.orders"][:2] == (run_id, "success")
    assert history.runs.stats()["runs"] == {"success": 1}
    assert history.runs.recent(status="failed") == [] and len(history.runs.recent(command="run")) == 1


def test_a_cancel_is_seen_by_another_handle_while_the_run_is_running(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    run_id = history.runs.start("run", "")
    assert history.runs.cancel_requested(run_id) is None
    SQLiteHistory(tmp_path / "state.sqlite").runs.request_cancel(run_id, "stop")
    assert history.runs.cancel_requested(run_id) == "stop"
    history.runs.finish(run_id, "cancelled", 0.1, {})
    history.runs.request_cancel(run_id, "again")  # a finished run keeps its reason
    assert history.runs.cancel_requested(run_id) == "stop"


def test_runs_of_a_dead_process_are_failed_with_their_ticks(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    run_id = history.runs.start("run", "")
    assert history.runs.mark_abandoned() == 0  # this process is alive
    history.schedules.claim_ticks("nightly", [("2024-01-01T00:00:00+00:00", "claimed", "")])
    history.schedules.update_tick(
        "nightly", "2024-01-01T00:00:00+00:00", "started", run_id=run_id, started=True
    )
    assert history.runs.mark_abandoned(all_running=True) == 1
    run = history.runs.get(run_id)
    assert run is not None and run.status == "failed"
    [tick] = history.schedules.ticks("nightly")
    assert (tick.status, tick.note) == ("failed", "the run died")
