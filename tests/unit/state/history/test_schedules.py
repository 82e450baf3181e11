"""Scheduler ticks: a tick is claimed once, whichever scheduler asks; trigger cursors persist."""

from __future__ import annotations

from pathlib import Path

from gristmill.state import SQLiteHistory

TICK = "2024-01-01T00:00:00+00:00"


def test_a_tick_is_claimed_once(tmp_path: Path) -> None:
    one, two = SQLiteHistory(tmp_path / "state.sqlite"), SQLiteHistory(tmp_path / "state.sqlite")
    assert one.schedules.claim_ticks("nightly", [(TICK, "claimed", "due")]) == [TICK]
    assert two.schedules.claim_ticks("nightly", [(TICK, "claimed", "due")]) == []
    assert two.schedules.last_tick("nightly") == TICK and two.schedules.last_tick("hourly") is None
    [tick] = two.schedules.unfinished_ticks()
    assert (tick.schedule, tick.status, tick.note) == ("nightly", "claimed", "due")


def test_a_tick_moves_through_its_states(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    history.schedules.claim_ticks("nightly", [(TICK, "claimed", "")])
    history.schedules.update_tick("nightly", TICK, "started", run_id=4, started=True)
    history.schedules.update_tick("nightly", TICK, "success")  # keeps its run and start time
    [tick] = history.schedules.ticks()
    assert (tick.status, tick.run_id) == ("success", 4) and tick.started_at
    assert history.schedules.unfinished_ticks() == []


def test_first_seen_is_set_once_and_the_trigger_cursor_kept(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    first = history.schedules.first_seen("on_files")
    assert history.schedules.trigger_cursor("on_files") is None
    history.schedules.set_trigger_cursor("on_files", "42")
    again = SQLiteHistory(tmp_path / "state.sqlite").schedules
    assert again.first_seen("on_files") == first and again.trigger_cursor("on_files") == "42"
    again.set_trigger_cursor("new", "1")  # a cursor for an unseen schedule sees it first
    assert again.trigger_cursor("new") == "1"
