"""The scheduler's memory: ticks claimed before their run starts (a tick never runs twice, whatever
crashes, even with two schedulers), when each schedule was first seen, and what an event trigger
saw last."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Protocol

from gristmill.state.history.schema import Domain, locked, now
from gristmill.state.records import TickRecord


class Schedules(Protocol):
    def first_seen(self, schedule: str) -> str: ...

    def trigger_cursor(self, schedule: str) -> str | None: ...

    def set_trigger_cursor(self, schedule: str, cursor: str) -> None: ...

    def last_tick(self, schedule: str) -> str | None: ...

    def claim_ticks(self, schedule: str, ticks: Iterable[tuple[str, str, str]]) -> list[str]: ...

    def update_tick(
        self,
        schedule: str,
        tick_at: str,
        status: str,
        *,
        run_id: int | None = None,
        started: bool = False,
        note: str | None = None,
    ) -> None: ...

    def ticks(self, schedule: str | None = None, limit: int = 50) -> list[TickRecord]: ...

    def unfinished_ticks(self) -> list[TickRecord]: ...

    def paused(self) -> dict[str, str]: ...

    def set_paused(self, schedule: str, paused: bool) -> None: ...


def fail_ticks(db: sqlite3.Connection, run_id: int, note: str) -> None:
    """Mark the ticks of a run that died failed; the caller holds the lock."""
    db.execute("UPDATE ticks SET status = 'failed', note = ? WHERE run_id = ?", (note, run_id))


_TICK_COLUMNS = "schedule, tick_at, status, run_id, claimed_at, started_at, note"


class SQLiteSchedules(Domain):
    @locked
    def first_seen(self, schedule: str) -> str:
        """When the scheduler first saw ``schedule`` (set on the first call)."""
        self.db.execute(
            "INSERT OR IGNORE INTO schedule_state (schedule, first_seen) VALUES (?, ?)", (schedule, now())
        )
        return str(
            self.db.execute(
                "SELECT first_seen FROM schedule_state WHERE schedule = ?", (schedule,)
            ).fetchone()[0]
        )

    @locked
    def trigger_cursor(self, schedule: str) -> str | None:
        row = self.db.execute("SELECT cursor FROM schedule_state WHERE schedule = ?", (schedule,)).fetchone()
        return None if row is None else row[0]

    @locked
    def set_trigger_cursor(self, schedule: str, cursor: str) -> None:
        self.first_seen(schedule)
        self.db.execute("UPDATE schedule_state SET cursor = ? WHERE schedule = ?", (cursor, schedule))

    @locked
    def last_tick(self, schedule: str) -> str | None:
        row = self.db.execute("SELECT max(tick_at) FROM ticks WHERE schedule = ?", (schedule,)).fetchone()
        return row[0] if row else None

    @locked
    def claim_ticks(self, schedule: str, ticks: Iterable[tuple[str, str, str]]) -> list[str]:
        """Claim (tick_at, status, note) rows; returns the ticks this call claimed. A tick another
        scheduler already claimed is left to it: one run per tick, even with two schedulers."""
        at, claimed = now(), []
        self.db.execute("BEGIN IMMEDIATE")
        for tick_at, status, note in ticks:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO ticks (schedule, tick_at, status, claimed_at, note)"
                " VALUES (?, ?, ?, ?, ?)",
                (schedule, tick_at, status, at, note),
            )
            if cursor.rowcount == 1:
                claimed.append(tick_at)
        self.db.execute("COMMIT")
        return claimed

    @locked
    def update_tick(
        self,
        schedule: str,
        tick_at: str,
        status: str,
        *,
        run_id: int | None = None,
        started: bool = False,
        note: str | None = None,
    ) -> None:
        self.db.execute(
            "UPDATE ticks SET status = ?, run_id = COALESCE(?, run_id),"
            " started_at = CASE WHEN ? THEN ? ELSE started_at END, note = COALESCE(?, note)"
            " WHERE schedule = ? AND tick_at = ?",
            (status, run_id, started, now(), note, schedule, tick_at),
        )

    @locked
    def ticks(self, schedule: str | None = None, limit: int = 50) -> list[TickRecord]:
        rows = self.db.execute(
            f"SELECT {_TICK_COLUMNS} FROM ticks"
            " WHERE ? IS NULL OR schedule = ? ORDER BY tick_at DESC LIMIT ?",
            (schedule, schedule, limit),
        ).fetchall()
        return [TickRecord(*row) for row in rows]

    @locked
    def unfinished_ticks(self) -> list[TickRecord]:
        """Ticks claimed whose run never finished (the scheduler died)."""
        rows = self.db.execute(
            f"SELECT {_TICK_COLUMNS} FROM ticks WHERE status IN ('claimed', 'started') ORDER BY tick_at"
        ).fetchall()
        return [TickRecord(*row) for row in rows]

    @locked
    def paused(self) -> dict[str, str]:
        """The paused schedules, each with when it was paused."""
        rows = self.db.execute(
            "SELECT schedule, paused_at FROM schedule_state WHERE paused_at IS NOT NULL"
        ).fetchall()
        return {str(name): str(at) for name, at in rows}

    @locked
    def set_paused(self, schedule: str, paused: bool) -> None:
        """Pause (or resume) a schedule: the scheduler reads this at every turn of its loop."""
        self.first_seen(schedule)
        self.db.execute(
            "UPDATE schedule_state SET paused_at = ? WHERE schedule = ?",
            (now() if paused else None, schedule),
        )
