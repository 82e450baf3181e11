"""Runs and their step attempts: what each run did, step by step, with what each step logged; the
process that runs it, so a run whose process died does not stay 'running'; and a cancel asked for
by another process."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from typing import Any, Protocol

from gristmill._util.processes import process_alive
from gristmill.config.secrets import redact
from gristmill.state.history.quality import insert_checks, insert_metrics
from gristmill.state.history.schedules import fail_ticks
from gristmill.state.history.schema import Domain, locked, now
from gristmill.state.records import RUN_DIED, CheckRecord, LogRecord, MetricRecord, RunRecord, StepRecord


class Runs(Protocol):
    def start(self, command: str, selection: str) -> int:
        """A new run, 'running' in this process; returns its id."""
        ...

    def record_steps(
        self,
        run_id: int,
        steps: list[StepRecord],
        checks: list[CheckRecord],
        metrics: list[MetricRecord] | None = None,
        logs: list[LogRecord] | None = None,
    ) -> None:
        """A batch of finished steps, check results, table metrics and step logs, in one transaction."""
        ...

    def finish(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None: ...

    def mark_abandoned(self, *, all_running: bool = False) -> int:
        """Mark runs whose process died as failed; returns how many."""
        ...

    def recent(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]: ...

    def get(self, run_id: int) -> RunRecord | None: ...

    def pid(self, run_id: int) -> int | None: ...

    def request_cancel(self, run_id: int, reason: str) -> None:
        """Ask a running run (in any process) to stop; it polls for this."""
        ...

    def cancel_requested(self, run_id: int) -> str | None:
        """Why another process asked this run to stop, if it did."""
        ...

    def steps(self, run_id: int) -> list[StepRecord]: ...

    def step_logs(
        self, run_id: int, asset: str | None = None, *, grep: str | None = None, limit: int = 5000
    ) -> list[LogRecord]: ...

    def last_build(self) -> dict[str, tuple[int, str, str]]: ...

    def last_success(self) -> dict[str, tuple[int, str]]: ...

    def stats(self) -> dict[str, Any]: ...


_RUN_COLUMNS = "run_id, command, selection, status, started_at, finished_at, seconds, summary"


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, command, selection, status, started, finished, seconds, summary = row
    return RunRecord(
        run_id, command, selection, status, started, finished, seconds, json.loads(summary or "{}")
    )


class SQLiteRuns(Domain):
    @locked
    def start(self, command: str, selection: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (command, selection, status, pid, started_at) VALUES (?, ?, 'running', ?, ?)",
            (command, selection, os.getpid(), now()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @locked
    def record_steps(
        self,
        run_id: int,
        steps: list[StepRecord],
        checks: list[CheckRecord],
        metrics: list[MetricRecord] | None = None,
        logs: list[LogRecord] | None = None,
    ) -> None:
        """Write a batch of finished steps, check results, metrics and step logs in one transaction."""
        at = now()
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO steps (run_id, asset, kind, attempt, action, status, reason, fingerprint,"
            " rows, seconds, error, finished_at, rows_read, rows_quarantined, rows_discarded, bytes_read,"
            " events, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    s.asset,
                    s.kind,
                    s.attempt,
                    s.action,
                    s.status,
                    s.reason,
                    s.fingerprint,
                    s.rows,
                    s.seconds,
                    redact(s.error) if s.error else None,
                    at,
                    s.rows_read,
                    s.rows_quarantined,
                    s.rows_discarded,
                    s.bytes_read,
                    json.dumps(list(s.events)) if s.events else None,
                    s.started_at,
                )
                for s in steps
            ],
        )
        insert_checks(self.db, run_id, checks)
        insert_metrics(self.db, run_id, metrics or (), at)
        self.db.executemany(
            "INSERT OR REPLACE INTO step_logs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(g.run_id, g.asset, g.attempt, g.seq, g.at, g.level, g.message) for g in logs or ()],
        )
        self.db.execute("COMMIT")

    @locked
    def finish(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, seconds = ?, summary = ? WHERE run_id = ?",
            (status, now(), seconds, json.dumps(summary), run_id),
        )

    @locked
    def mark_abandoned(self, *, all_running: bool = False) -> int:
        """Runs left 'running' by a process that died are marked failed, and their ticks with them;
        returns how many.

        ``all_running``: the caller holds the project's run lock, so no other run can be running
        whatever its pid says (a dead run's pid may have been reused)."""
        stale = [
            run_id
            for run_id, pid in self.db.execute(
                "SELECT run_id, pid FROM runs WHERE status = 'running'"
            ).fetchall()
            if all_running or not process_alive(pid)
        ]
        at = now()
        for run_id in stale:
            self.db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, summary = ? WHERE run_id = ?",
                (at, json.dumps({"error": RUN_DIED}), run_id),
            )
            fail_ticks(self.db, run_id, "the run died")
        return len(stale)

    @locked
    def recent(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]:
        """The latest runs, newest first, optionally only those with this status, command (its
        first word), touching this asset, or started at or after ``since`` (ISO)."""
        where: list[str] = ["1 = 1"]
        args: list[str] = []
        if status:
            where.append("status = ?")
            args.append(status)
        if command:
            where.append("(command = ? OR command LIKE ?)")
            args += [command, f"{command} %"]
        if asset:
            where.append("run_id IN (SELECT run_id FROM steps WHERE asset = ? AND status != 'skipped')")
            args.append(asset)
        if since:
            where.append("started_at >= ?")
            args.append(since)
        rows = self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY run_id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_run_record(row) for row in rows]

    @locked
    def get(self, run_id: int) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _run_record(row)

    @locked
    def pid(self, run_id: int) -> int | None:
        row = self.db.execute("SELECT pid FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else int(row[0])

    @locked
    def request_cancel(self, run_id: int, reason: str) -> None:
        self.db.execute(
            "UPDATE runs SET cancel_requested = ? WHERE run_id = ? AND status = 'running'", (reason, run_id)
        )

    @locked
    def cancel_requested(self, run_id: int) -> str | None:
        row = self.db.execute("SELECT cancel_requested FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    @locked
    def steps(self, run_id: int) -> list[StepRecord]:
        names = [f.name for f in fields(StepRecord)]  # the columns carry the fields' names
        rows = self.db.execute(
            f"SELECT {', '.join(names)} FROM steps WHERE run_id = ? ORDER BY finished_at, asset", (run_id,)
        ).fetchall()
        return [
            StepRecord(
                **dict(zip(names[:-1], row[:-1], strict=True)), events=tuple(json.loads(row[-1] or "[]"))
            )
            for row in rows
        ]

    @locked
    def step_logs(
        self, run_id: int, asset: str | None = None, *, grep: str | None = None, limit: int = 5000
    ) -> list[LogRecord]:
        """What a run's steps logged, in order; only lines containing ``grep`` (case-insensitive)."""
        where, args = ["run_id = ?"], [str(run_id)]
        if asset:
            where.append("asset = ?")
            args.append(asset)
        if grep:
            where.append("instr(lower(message), lower(?)) > 0")
            args.append(grep)
        rows = self.db.execute(
            "SELECT run_id, asset, attempt, seq, at, level, message FROM step_logs"
            f" WHERE {' AND '.join(where)} ORDER BY at, asset, attempt, seq LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [LogRecord(*row) for row in rows]

    @locked
    def last_build(self) -> dict[str, tuple[int, str, str]]:
        """Per asset: (run_id, status, finished_at) of its most recent build attempt."""
        rows = self.db.execute(
            "SELECT asset, run_id, status, finished_at FROM steps"
            " WHERE action = 'build' OR status != 'skipped' ORDER BY run_id, finished_at"
        ).fetchall()
        return {asset: (run_id, status, finished) for asset, run_id, status, finished in rows}

    @locked
    def last_success(self) -> dict[str, tuple[int, str]]:
        """Per asset: (run_id, finished_at) of the latest run that left it current: built it, or
        found it unchanged (a freshness policy counts both)."""
        rows = self.db.execute(
            "SELECT asset, max(run_id), max(finished_at) FROM steps"
            " WHERE status IN ('success', 'skipped', 'switched') GROUP BY asset"
        ).fetchall()
        return {asset: (run_id, at) for asset, run_id, at in rows}

    @locked
    def stats(self) -> dict[str, Any]:
        """Counts and durations for a metrics endpoint: runs by status, finished runs' seconds,
        step attempts by status."""
        runs = dict(self.db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        seconds = [
            row[0] for row in self.db.execute("SELECT seconds FROM runs WHERE seconds IS NOT NULL").fetchall()
        ]
        steps = dict(
            self.db.execute(
                "SELECT status, count(*) FROM steps WHERE action = 'build' GROUP BY status"
            ).fetchall()
        )
        return {"runs": runs, "seconds": seconds, "steps": steps}
