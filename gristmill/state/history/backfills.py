"""Backfills, and the status of each partition (asset, interval start) they cover, so a backfill
can be listed, resumed or retried partition by partition."""

from __future__ import annotations

from typing import Protocol

from gristmill.config.secrets import redact
from gristmill.state.history.schema import Domain, locked, now
from gristmill.state.records import BackfillRecord, PartitionRecord


class Backfills(Protocol):
    def start(self, selection: str, start: str, end: str, partitions: list[tuple[str, str]]) -> int:
        """A new running backfill over these (asset, partition) pairs, all pending; returns its id."""
        ...

    def set_partitions(
        self, backfill_id: int, rows: list[tuple[str, str, str, int | None, str | None]]
    ) -> None: ...

    def finish(self, backfill_id: int, status: str) -> None: ...

    def recent(self, backfill_id: int | None = None, limit: int = 20) -> list[BackfillRecord]:
        """The latest backfills (or only ``backfill_id``), newest first, with counts of partitions."""
        ...

    def partitions(self, backfill_id: int) -> list[PartitionRecord]: ...


class SQLiteBackfills(Domain):
    @locked
    def start(self, selection: str, start: str, end: str, partitions: list[tuple[str, str]]) -> int:
        self.db.execute("BEGIN")
        cursor = self.db.execute(
            "INSERT INTO backfills (selection, start_at, end_at, status, created_at)"
            " VALUES (?, ?, ?, 'running', ?)",
            (selection, start, end, now()),
        )
        backfill_id = cursor.lastrowid
        assert backfill_id is not None
        self.db.executemany(
            "INSERT INTO backfill_partitions (backfill_id, asset, partition, status)"
            " VALUES (?, ?, ?, 'pending')",
            [(backfill_id, asset, partition) for asset, partition in partitions],
        )
        self.db.execute("COMMIT")
        return backfill_id

    @locked
    def set_partitions(
        self, backfill_id: int, rows: list[tuple[str, str, str, int | None, str | None]]
    ) -> None:
        """(asset, partition, status, run_id, error) rows."""
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE backfill_partitions SET status = ?, run_id = ?, error = ?"
            " WHERE backfill_id = ? AND asset = ? AND partition = ?",
            [
                (status, run_id, redact(error) if error else None, backfill_id, asset, partition)
                for asset, partition, status, run_id, error in rows
            ],
        )
        self.db.execute("COMMIT")

    @locked
    def finish(self, backfill_id: int, status: str) -> None:
        self.db.execute(
            "UPDATE backfills SET status = ?, finished_at = ? WHERE backfill_id = ?",
            (status, now(), backfill_id),
        )

    @locked
    def recent(self, backfill_id: int | None = None, limit: int = 20) -> list[BackfillRecord]:
        rows = self.db.execute(
            "SELECT backfill_id, selection, start_at, end_at, status, created_at, finished_at FROM backfills"
            " WHERE ? IS NULL OR backfill_id = ? ORDER BY backfill_id DESC LIMIT ?",
            (backfill_id, backfill_id, limit),
        ).fetchall()
        found = []
        for row in rows:
            counts = dict(
                self.db.execute(
                    "SELECT status, count(*) FROM backfill_partitions WHERE backfill_id = ? GROUP BY status",
                    (row[0],),
                ).fetchall()
            )
            backfill_id_, selection, start, end, status, created, finished = row
            found.append(
                BackfillRecord(backfill_id_, selection, start, end, status, created, finished, counts)
            )
        return found

    @locked
    def partitions(self, backfill_id: int) -> list[PartitionRecord]:
        rows = self.db.execute(
            "SELECT backfill_id, asset, partition, status, run_id, error FROM backfill_partitions"
            " WHERE backfill_id = ? ORDER BY asset, partition",
            (backfill_id,),
        ).fetchall()
        return [PartitionRecord(*row) for row in rows]
