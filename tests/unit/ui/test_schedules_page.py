"""The Schedules & streams page's data, without a browser; the pause kept in a real run history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gristmill.config.settings import ScheduleSettings
from gristmill.state import open_history
from gristmill.ui.pages import schedules


def test_next_ticks_follow_the_cron_in_its_time_zone() -> None:
    nightly = ScheduleSettings(cron="0 3 * * *", timezone="Europe/Berlin")
    now = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    assert schedules.next_ticks(nightly, now, 2) == ["2026-12-08T02:00:00+00:00", "2026-12-09T02:00:00+00:00"]
    assert schedules.next_ticks(ScheduleSettings(freshness="1h"), now) == []
    assert schedules.trigger_of(nightly) == "cron 0 3 * * * (Europe/Berlin)"


def test_streams_list_running_first_with_lag_per_partition_and_its_total() -> None:
    rows = schedules.stream_rows(
        [
            {"model": "clicks", "pid": 2, "state": "dead", "events": 5},
            {"model": "orders", "pid": 1, "state": "running", "events": 10, "lag": {"1": 4, "0": 2}},
        ]
    )
    assert [r["model"] for r in rows] == ["orders", "clicks"]
    assert rows[0]["lag"] == [("0", 2), ("1", 4)] and rows[0]["total_lag"] == 6
    assert rows[1]["lag"] == [] and rows[1]["total_lag"] == 0


def test_a_pause_is_kept_in_the_history_until_resumed(tmp_path: Path) -> None:
    history = open_history(tmp_path / "state.sqlite")
    try:
        assert history.schedules.paused() == {}
        history.schedules.set_paused("nightly", True)
        assert list(history.schedules.paused()) == ["nightly"]
        history.schedules.set_paused("nightly", False)
        assert history.schedules.paused() == {}
    finally:
        history.close()
