"""Check results and table metrics: kept per environment, read as series over the latest runs,
anomalies flagged."""

from __future__ import annotations

from pathlib import Path

from gristmill.state import SQLiteHistory
from gristmill.state.records import CheckRecord, MetricRecord


def _run(history: SQLiteHistory, rows: float, *, env: str = "prod", status: str = "pass") -> int:
    run_id = history.runs.start("run", "")
    check = CheckRecord(run_id, "marts.orders", "not_null(id)", "error", status, 0, ({"id": None},), env=env)
    metric = MetricRecord("marts.orders", "row_count", "", rows, env=env)
    history.runs.record_steps(run_id, [], [check], [metric])
    history.runs.finish(run_id, "success", 1.0, {})
    return run_id


def test_metrics_are_read_back_oldest_first_and_flagged(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    first, second = _run(history, 10), _run(history, 12)
    _run(history, 99, env="dev")
    values = history.quality.metric_history("marts.orders", "row_count")
    assert [(m.run_id, m.value, m.flagged) for m in values] == [(first, 10, False), (second, 12, False)]
    assert values[0].measured_at  # stamped when the record carried no time
    history.quality.flag_metric(second, "marts.orders", "row_count")
    assert history.quality.metric_history("marts.orders", "row_count")[-1].flagged
    assert [m.value for m in history.quality.metric_series(["marts.orders"], env="dev")] == [99]
    assert len(history.quality.metric_series(["marts.orders"], runs=1)) == 1


def test_check_results_keep_their_environment_and_samples(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    _run(history, 1)
    dev = _run(history, 1, env="dev", status="fail")
    [check] = history.quality.check_results(["marts.orders"], env="dev")
    assert (check.run_id, check.status, check.env, check.samples) == (dev, "fail", "dev", ({"id": None},))
    assert check.finished_at  # the run's finish time
    assert [c.status for c in history.quality.check_results(["marts.orders"])] == ["pass"]
