"""Backfills: partitions start pending, their statuses are counted, a failed one keeps its error."""

from __future__ import annotations

from pathlib import Path

from gristmill.state import SQLiteHistory


def test_a_backfill_and_its_partitions(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    parts = [("marts.events", "2024-01-01"), ("marts.events", "2024-01-02")]
    backfill_id = history.backfills.start("+events", "2024-01-01", "2024-01-03", parts)
    [record] = history.backfills.recent()
    assert (record.backfill_id, record.status, record.partitions) == (backfill_id, "running", {"pending": 2})
    history.backfills.set_partitions(
        backfill_id,
        [
            ("marts.events", "2024-01-01", "success", 3, None),
            ("marts.events", "2024-01-02", "failed", 4, "rejected"),
        ],
    )
    history.backfills.finish(backfill_id, "failed")
    [record] = history.backfills.recent(backfill_id, 1)
    assert record.status == "failed" and record.finished_at
    assert record.partitions == {"success": 1, "failed": 1}
    done, failed = history.backfills.partitions(backfill_id)
    assert (done.partition, done.run_id, done.error) == ("2024-01-01", 3, None)
    assert (failed.status, failed.error) == ("failed", "rejected")
    assert history.backfills.recent(backfill_id + 1) == []
