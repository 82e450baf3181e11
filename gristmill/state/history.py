"""Run history in SQLite (WAL, synchronous=NORMAL): runs, step attempts, check results.

Schema changes are numbered migrations applied on open, tracked in ``PRAGMA user_version``.
Any process may read while a run writes. Writes are a few rows per step, so bookkeeping
stays at microseconds per step.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from gristmill._util.processes import process_alive
from gristmill.config.secrets import redact
from gristmill.errors import StateError
from gristmill.state.records import (
    RUN_DIED,
    BackfillRecord,
    CheckRecord,
    LogRecord,
    MetricRecord,
    PartitionRecord,
    RunRecord,
    StepRecord,
    TickRecord,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _locked(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """One statement sequence at a time on the shared connection: a run's steps read history
    from their threads while the coordinator writes."""

    @functools.wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return call


MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id      INTEGER PRIMARY KEY,
        command     TEXT NOT NULL,
        selection   TEXT NOT NULL,
        status      TEXT NOT NULL,          -- running | success | failed
        pid         INTEGER NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        seconds     REAL,
        summary     TEXT                    -- JSON: counts of built, skipped, failed, checks
    );
    CREATE TABLE steps (
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        asset       TEXT NOT NULL,
        kind        TEXT NOT NULL,
        attempt     INTEGER NOT NULL DEFAULT 1,
        action      TEXT NOT NULL,          -- build | skip
        status      TEXT NOT NULL,          -- success | failed | skipped | upstream_failed
        reason      TEXT NOT NULL,
        fingerprint TEXT,
        rows        INTEGER,
        seconds     REAL,
        error       TEXT,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (run_id, asset, attempt)
    );
    CREATE INDEX steps_by_asset ON steps(asset, run_id);
    CREATE TABLE check_results (
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        asset       TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        severity    TEXT NOT NULL,
        status      TEXT NOT NULL,          -- pass | fail
        failures    INTEGER NOT NULL
    );
    CREATE INDEX check_results_by_asset ON check_results(asset, run_id);
    """,
    """
    -- per load: rows read, set aside and dropped, bytes read, schema changes and notices (JSON list)
    ALTER TABLE steps ADD COLUMN rows_read INTEGER;
    ALTER TABLE steps ADD COLUMN rows_quarantined INTEGER;
    ALTER TABLE steps ADD COLUMN rows_discarded INTEGER;
    ALTER TABLE steps ADD COLUMN bytes_read INTEGER;
    ALTER TABLE steps ADD COLUMN events TEXT
    """,
    """
    -- each model's qualified output columns and column lineage, keyed by a digest of its SQL and
    -- the columns of what it reads: analysed once, reused by every later plan
    CREATE TABLE model_lineage (
        key         TEXT PRIMARY KEY,
        asset       TEXT NOT NULL,
        analysis    TEXT NOT NULL           -- JSON, see gristmill.sql.lineage.Analysis
    )
    """,
    """
    -- what parsing a model's text found (tables read, normalised digest), keyed by the text
    CREATE TABLE model_parse (
        key         TEXT PRIMARY KEY,
        summary     TEXT NOT NULL
    );
    -- the lake's versions, pointers and columns as of one catalog snapshot (see state/lake_state.py)
    CREATE TABLE lake_cache (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        snapshot    TEXT NOT NULL,
        state       TEXT NOT NULL
    )
    """,
    """
    -- a few failing rows of a failed check (JSON list of objects, PII columns masked)
    ALTER TABLE check_results ADD COLUMN samples TEXT
    """,
    """
    -- what an anomaly check saw (the value, the expected band and its basis)
    ALTER TABLE check_results ADD COLUMN detail TEXT;
    -- table metrics per run: row count, rows written, null rate, distinct ratio, min, max and
    -- freshness per column ('' for the table), flagged values are left out of later baselines
    CREATE TABLE metrics (
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        env         TEXT NOT NULL,
        asset       TEXT NOT NULL,
        metric      TEXT NOT NULL,
        column_name TEXT NOT NULL,
        value       REAL,
        flagged     INTEGER NOT NULL DEFAULT 0,
        measured_at TEXT NOT NULL
    );
    CREATE INDEX metrics_by_asset ON metrics(asset, env, metric, column_name, run_id)
    """,
    """
    -- the environment a check ran in (runs of other environments keep their own history)
    ALTER TABLE check_results ADD COLUMN env TEXT NOT NULL DEFAULT 'prod'
    """,
    """
    -- when each step attempt started (timelines, tick-to-start latency)
    ALTER TABLE steps ADD COLUMN started_at TEXT;
    -- what each step attempt logged, capped per attempt
    CREATE TABLE step_logs (
        run_id      INTEGER NOT NULL,
        asset       TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        at          TEXT NOT NULL,
        level       TEXT NOT NULL,
        message     TEXT NOT NULL,
        PRIMARY KEY (run_id, asset, attempt, seq)
    );
    -- scheduler ticks, claimed before their run starts: a tick never runs twice, whatever crashes
    CREATE TABLE ticks (
        schedule    TEXT NOT NULL,
        tick_at     TEXT NOT NULL,          -- ISO UTC
        status      TEXT NOT NULL,          -- claimed | started | skipped | success | failed | cancelled
        run_id      INTEGER,
        claimed_at  TEXT NOT NULL,
        started_at  TEXT,
        note        TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (schedule, tick_at)
    );
    CREATE TABLE schedule_state (
        schedule    TEXT PRIMARY KEY,
        first_seen  TEXT NOT NULL,
        cursor      TEXT                    -- what an event trigger saw last (files, asset runs)
    );
    -- backfills, and the status of each partition they cover
    CREATE TABLE backfills (
        backfill_id INTEGER PRIMARY KEY,
        selection   TEXT NOT NULL,
        start_at    TEXT NOT NULL,
        end_at      TEXT NOT NULL,
        status      TEXT NOT NULL,          -- running | success | failed | cancelled
        created_at  TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE backfill_partitions (
        backfill_id INTEGER NOT NULL,
        asset       TEXT NOT NULL,
        partition   TEXT NOT NULL,          -- ISO start of the interval
        status      TEXT NOT NULL,          -- pending | success | failed
        run_id      INTEGER,
        error       TEXT,
        PRIMARY KEY (backfill_id, asset, partition)
    )
    """,
    """
    -- a cancel asked for by another process (`gristmill cancel`): the run polls for it, so it
    -- stops whatever its signal disposition
    ALTER TABLE runs ADD COLUMN cancel_requested TEXT
    """,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SQLiteHistory:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise StateError(
                f"cannot open run history {path}: {err}",
                hint="if the file is damaged, move it away; the lake itself is unaffected",
            ) from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(
                f"run history was written by a newer Gristmill (schema {version})", hint="upgrade gristmill"
            )
        for number in range(version, len(MIGRATIONS)):
            self._db.execute("BEGIN IMMEDIATE")
            if (
                self._db.execute("PRAGMA user_version").fetchone()[0] == number
            ):  # another process may have won
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")

    @_locked
    def lake_cache(self) -> tuple[str, str] | None:
        row = self._db.execute("SELECT snapshot, state FROM lake_cache").fetchone()
        return (row[0], row[1]) if row else None

    @_locked
    def save_lake_cache(self, snapshot: str, state: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO lake_cache VALUES (1, ?, ?)", (snapshot, state))

    @_locked
    def parse_summaries(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, summary FROM model_parse").fetchall())

    @_locked
    def save_parse_summaries(self, summaries: dict[str, str]) -> None:
        if summaries:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO model_parse VALUES (?, ?)", list(summaries.items()))
            self._db.execute("COMMIT")

    @_locked
    def lineage(self, keys: list[str]) -> dict[str, str]:
        """Stored analyses (JSON) for these keys."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, analysis FROM model_lineage WHERE key IN ({marks})", chunk
            ).fetchall()
            found.update(rows)
        return found

    @_locked
    def save_lineage(self, entries: list[tuple[str, str, str]]) -> None:
        """(key, asset, analysis JSON) rows."""
        if not entries:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO model_lineage VALUES (?, ?, ?)", entries)
        self._db.execute("COMMIT")

    @_locked
    def start_run(self, command: str, selection: str) -> int:
        cursor = self._db.execute(
            "INSERT INTO runs (command, selection, status, pid, started_at) VALUES (?, ?, 'running', ?, ?)",
            (command, selection, os.getpid(), _now()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @_locked
    def record_steps(
        self,
        run_id: int,
        steps: list[StepRecord],
        checks: list[CheckRecord],
        metrics: list[MetricRecord] | None = None,
        logs: list[LogRecord] | None = None,
    ) -> None:
        """Write a batch of finished steps, check results, metrics and step logs in one transaction."""
        now = _now()
        self._db.execute("BEGIN")
        self._db.executemany(
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
                    now,
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
        self._db.executemany(
            "INSERT INTO check_results (run_id, asset, check_name, severity, status, failures, samples,"
            " detail, env) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    c.asset,
                    c.check,
                    c.severity,
                    c.status,
                    c.failures,
                    json.dumps(c.samples, default=str) if c.samples else None,
                    c.detail,
                    c.env,
                )
                for c in checks
            ],
        )
        self._db.executemany(
            "INSERT INTO metrics (run_id, env, asset, metric, column_name, value, flagged, measured_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (run_id, m.env, m.asset, m.metric, m.column, m.value, int(m.flagged), m.measured_at or now)
                for m in metrics or ()
            ],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO step_logs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(g.run_id, g.asset, g.attempt, g.seq, g.at, g.level, g.message) for g in logs or ()],
        )
        self._db.execute("COMMIT")

    @_locked
    def metric_history(
        self, asset: str, metric: str, column: str = "", *, env: str = "prod", limit: int = 400
    ) -> list[MetricRecord]:
        """The latest ``limit`` values of one metric, oldest first."""
        rows = self._db.execute(
            "SELECT run_id, value, flagged, measured_at FROM metrics WHERE asset = ? AND env = ?"
            " AND metric = ? AND column_name = ? AND value IS NOT NULL ORDER BY run_id DESC LIMIT ?",
            (asset, env, metric, column, limit),
        ).fetchall()
        return [
            MetricRecord(asset, metric, column, value, bool(flagged), run_id, at, env)
            for run_id, value, flagged, at in reversed(rows)
        ]

    @_locked
    def flag_metric(self, run_id: int, asset: str, metric: str, column: str = "", env: str = "prod") -> None:
        self._db.execute(
            "UPDATE metrics SET flagged = 1"
            " WHERE run_id = ? AND env = ? AND asset = ? AND metric = ? AND column_name = ?",
            (run_id, env, asset, metric, column),
        )

    @_locked
    def metric_series(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[MetricRecord]:
        """Every metric of these assets over their latest ``runs`` measuring runs, oldest first."""
        found: list[MetricRecord] = []
        for asset in assets:
            rows = self._db.execute(
                "SELECT run_id, metric, column_name, value, flagged, measured_at FROM metrics"
                " WHERE asset = ? AND env = ? AND run_id IN (SELECT DISTINCT run_id FROM metrics"
                " WHERE asset = ? AND env = ? ORDER BY run_id DESC LIMIT ?) ORDER BY run_id",
                (asset, env, asset, env, runs),
            ).fetchall()
            found.extend(
                MetricRecord(asset, metric, column, value, bool(flagged), run_id, at, env)
                for run_id, metric, column, value, flagged, at in rows
            )
        return found

    @_locked
    def check_results(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[CheckRecord]:
        """The check results of these assets in ``env`` over their latest ``runs`` runs, oldest first."""
        found: list[CheckRecord] = []
        for asset in assets:
            rows = self._db.execute(
                "SELECT c.run_id, c.check_name, c.severity, c.status, c.failures, c.samples, c.detail,"
                " COALESCE(r.finished_at, r.started_at) FROM check_results c JOIN runs r USING (run_id)"
                " WHERE c.asset = ? AND c.env = ? AND c.run_id IN (SELECT DISTINCT run_id FROM"
                " check_results WHERE asset = ? AND env = ? ORDER BY run_id DESC LIMIT ?) ORDER BY c.run_id",
                (asset, env, asset, env, runs),
            ).fetchall()
            found.extend(
                CheckRecord(
                    run_id,
                    asset,
                    name,
                    sev,
                    status,
                    failures,
                    tuple(json.loads(samples or "[]")),
                    detail,
                    at,
                    env,
                )
                for run_id, name, sev, status, failures, samples, detail, at in rows
            )
        return found

    @_locked
    def finish_run(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, seconds = ?, summary = ? WHERE run_id = ?",
            (status, _now(), seconds, json.dumps(summary), run_id),
        )

    @_locked
    def mark_abandoned(self, *, all_running: bool = False) -> int:
        """Runs left 'running' by a process that died are marked failed; returns how many.

        ``all_running``: the caller holds the project's run lock, so no other run can be running
        whatever its pid says (a dead run's pid may have been reused)."""
        stale = [
            run_id
            for run_id, pid in self._db.execute(
                "SELECT run_id, pid FROM runs WHERE status = 'running'"
            ).fetchall()
            if all_running or not process_alive(pid)
        ]
        now = _now()
        for run_id in stale:
            self._db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, summary = ? WHERE run_id = ?",
                (
                    now,
                    json.dumps({"error": RUN_DIED}),
                    run_id,
                ),
            )
            self._db.execute(
                "UPDATE ticks SET status = 'failed', note = 'the run died' WHERE run_id = ?", (run_id,)
            )
        return len(stale)

    @_locked
    def runs(
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
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY run_id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_run_record(row) for row in rows]

    @_locked
    def run(self, run_id: int) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return None if row is None else _run_record(row)

    @_locked
    def request_cancel(self, run_id: int, reason: str) -> None:
        self._db.execute(
            "UPDATE runs SET cancel_requested = ? WHERE run_id = ? AND status = 'running'", (reason, run_id)
        )

    @_locked
    def cancel_requested(self, run_id: int) -> str | None:
        row = self._db.execute("SELECT cancel_requested FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    @_locked
    def run_pid(self, run_id: int) -> int | None:
        row = self._db.execute("SELECT pid FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else int(row[0])

    @_locked
    def steps(self, run_id: int) -> list[StepRecord]:
        names = [f.name for f in fields(StepRecord)]  # the columns carry the fields' names
        rows = self._db.execute(
            f"SELECT {', '.join(names)} FROM steps WHERE run_id = ? ORDER BY finished_at, asset", (run_id,)
        ).fetchall()
        return [
            StepRecord(
                **dict(zip(names[:-1], row[:-1], strict=True)), events=tuple(json.loads(row[-1] or "[]"))
            )
            for row in rows
        ]

    @_locked
    def last_build(self) -> dict[str, tuple[int, str, str]]:
        """Per asset: (run_id, status, finished_at) of its most recent build attempt."""
        rows = self._db.execute(
            "SELECT asset, run_id, status, finished_at FROM steps"
            " WHERE action = 'build' OR status != 'skipped' ORDER BY run_id, finished_at"
        ).fetchall()
        return {asset: (run_id, status, finished) for asset, run_id, status, finished in rows}

    @_locked
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
        rows = self._db.execute(
            "SELECT run_id, asset, attempt, seq, at, level, message FROM step_logs"
            f" WHERE {' AND '.join(where)} ORDER BY at, asset, attempt, seq LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [LogRecord(*row) for row in rows]

    @_locked
    def last_success(self) -> dict[str, tuple[int, str]]:
        """Per asset: (run_id, finished_at) of the latest run that left it current: built it, or
        found it unchanged (a freshness policy counts both)."""
        rows = self._db.execute(
            "SELECT asset, max(run_id), max(finished_at) FROM steps"
            " WHERE status IN ('success', 'skipped', 'switched') GROUP BY asset"
        ).fetchall()
        return {asset: (run_id, at) for asset, run_id, at in rows}

    # -- scheduler ---------------------------------------------------------------------------------

    @_locked
    def first_seen(self, schedule: str) -> str:
        """When the scheduler first saw ``schedule`` (set on the first call)."""
        self._db.execute(
            "INSERT OR IGNORE INTO schedule_state (schedule, first_seen) VALUES (?, ?)", (schedule, _now())
        )
        return str(
            self._db.execute(
                "SELECT first_seen FROM schedule_state WHERE schedule = ?", (schedule,)
            ).fetchone()[0]
        )

    @_locked
    def trigger_cursor(self, schedule: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM schedule_state WHERE schedule = ?", (schedule,)).fetchone()
        return None if row is None else row[0]

    @_locked
    def set_trigger_cursor(self, schedule: str, cursor: str) -> None:
        self.first_seen(schedule)
        self._db.execute("UPDATE schedule_state SET cursor = ? WHERE schedule = ?", (cursor, schedule))

    @_locked
    def last_tick(self, schedule: str) -> str | None:
        row = self._db.execute("SELECT max(tick_at) FROM ticks WHERE schedule = ?", (schedule,)).fetchone()
        return row[0] if row else None

    @_locked
    def claim_ticks(self, schedule: str, ticks: Iterable[tuple[str, str, str]]) -> list[str]:
        """Claim (tick_at, status, note) rows; returns the ticks this call claimed. A tick another
        scheduler already claimed is left to it: one run per tick, even with two schedulers."""
        now, claimed = _now(), []
        self._db.execute("BEGIN IMMEDIATE")
        for tick_at, status, note in ticks:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO ticks (schedule, tick_at, status, claimed_at, note)"
                " VALUES (?, ?, ?, ?, ?)",
                (schedule, tick_at, status, now, note),
            )
            if cursor.rowcount == 1:
                claimed.append(tick_at)
        self._db.execute("COMMIT")
        return claimed

    @_locked
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
        self._db.execute(
            "UPDATE ticks SET status = ?, run_id = COALESCE(?, run_id),"
            " started_at = CASE WHEN ? THEN ? ELSE started_at END, note = COALESCE(?, note)"
            " WHERE schedule = ? AND tick_at = ?",
            (status, run_id, started, _now(), note, schedule, tick_at),
        )

    @_locked
    def ticks(self, schedule: str | None = None, limit: int = 50) -> list[TickRecord]:
        rows = self._db.execute(
            "SELECT schedule, tick_at, status, run_id, claimed_at, started_at, note FROM ticks"
            " WHERE ? IS NULL OR schedule = ? ORDER BY tick_at DESC LIMIT ?",
            (schedule, schedule, limit),
        ).fetchall()
        return [TickRecord(*row) for row in rows]

    @_locked
    def unfinished_ticks(self) -> list[TickRecord]:
        """Ticks claimed whose run never finished (the scheduler died)."""
        rows = self._db.execute(
            "SELECT schedule, tick_at, status, run_id, claimed_at, started_at, note FROM ticks"
            " WHERE status IN ('claimed', 'started') ORDER BY tick_at"
        ).fetchall()
        return [TickRecord(*row) for row in rows]

    # -- backfills ---------------------------------------------------------------------------------

    @_locked
    def start_backfill(self, selection: str, start: str, end: str, partitions: list[tuple[str, str]]) -> int:
        self._db.execute("BEGIN")
        cursor = self._db.execute(
            "INSERT INTO backfills (selection, start_at, end_at, status, created_at)"
            " VALUES (?, ?, ?, 'running', ?)",
            (selection, start, end, _now()),
        )
        backfill_id = cursor.lastrowid
        assert backfill_id is not None
        self._db.executemany(
            "INSERT INTO backfill_partitions (backfill_id, asset, partition, status)"
            " VALUES (?, ?, ?, 'pending')",
            [(backfill_id, asset, partition) for asset, partition in partitions],
        )
        self._db.execute("COMMIT")
        return backfill_id

    @_locked
    def set_partitions(
        self, backfill_id: int, rows: list[tuple[str, str, str, int | None, str | None]]
    ) -> None:
        """(asset, partition, status, run_id, error) rows."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "UPDATE backfill_partitions SET status = ?, run_id = ?, error = ?"
            " WHERE backfill_id = ? AND asset = ? AND partition = ?",
            [
                (status, run_id, redact(error) if error else None, backfill_id, asset, partition)
                for asset, partition, status, run_id, error in rows
            ],
        )
        self._db.execute("COMMIT")

    @_locked
    def finish_backfill(self, backfill_id: int, status: str) -> None:
        self._db.execute(
            "UPDATE backfills SET status = ?, finished_at = ? WHERE backfill_id = ?",
            (status, _now(), backfill_id),
        )

    @_locked
    def backfills(self, backfill_id: int | None = None, limit: int = 20) -> list[BackfillRecord]:
        rows = self._db.execute(
            "SELECT backfill_id, selection, start_at, end_at, status, created_at, finished_at FROM backfills"
            " WHERE ? IS NULL OR backfill_id = ? ORDER BY backfill_id DESC LIMIT ?",
            (backfill_id, backfill_id, limit),
        ).fetchall()
        found = []
        for row in rows:
            counts = dict(
                self._db.execute(
                    "SELECT status, count(*) FROM backfill_partitions WHERE backfill_id = ? GROUP BY status",
                    (row[0],),
                ).fetchall()
            )
            backfill_id_, selection, start, end, status, created, finished = row
            found.append(
                BackfillRecord(backfill_id_, selection, start, end, status, created, finished, counts)
            )
        return found

    @_locked
    def partitions(self, backfill_id: int) -> list[PartitionRecord]:
        rows = self._db.execute(
            "SELECT backfill_id, asset, partition, status, run_id, error FROM backfill_partitions"
            " WHERE backfill_id = ? ORDER BY asset, partition",
            (backfill_id,),
        ).fetchall()
        return [PartitionRecord(*row) for row in rows]

    # -- metrics -----------------------------------------------------------------------------------

    @_locked
    def run_stats(self) -> dict[str, Any]:
        """Counts and durations for a metrics endpoint: runs by status, finished runs' seconds,
        step attempts by status."""
        runs = dict(self._db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        seconds = [
            row[0]
            for row in self._db.execute("SELECT seconds FROM runs WHERE seconds IS NOT NULL").fetchall()
        ]
        steps = dict(
            self._db.execute(
                "SELECT status, count(*) FROM steps WHERE action = 'build' GROUP BY status"
            ).fetchall()
        )
        return {"runs": runs, "seconds": seconds, "steps": steps}

    @_locked
    def close(self) -> None:
        self._db.close()


_RUN_COLUMNS = "run_id, command, selection, status, started_at, finished_at, seconds, summary"


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, command, selection, status, started, finished, seconds, summary = row
    return RunRecord(
        run_id, command, selection, status, started, finished, seconds, json.loads(summary or "{}")
    )
