"""Run history in SQLite (WAL, synchronous=NORMAL): runs, step attempts, check results.

Schema changes are numbered migrations applied on open, tracked in ``PRAGMA user_version``.
Any process may read while a run writes. Writes are a few rows per step, so bookkeeping
stays at microseconds per step.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.config.secrets import redact
from gristmill.errors import StateError
from gristmill.state.records import CheckRecord, MetricRecord, RunRecord, StepRecord

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
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SQLiteHistory:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
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

    def lake_cache(self) -> tuple[str, str] | None:
        row = self._db.execute("SELECT snapshot, state FROM lake_cache").fetchone()
        return (row[0], row[1]) if row else None

    def save_lake_cache(self, snapshot: str, state: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO lake_cache VALUES (1, ?, ?)", (snapshot, state))

    def parse_summaries(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, summary FROM model_parse").fetchall())

    def save_parse_summaries(self, summaries: dict[str, str]) -> None:
        if summaries:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO model_parse VALUES (?, ?)", list(summaries.items()))
            self._db.execute("COMMIT")

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

    def save_lineage(self, entries: list[tuple[str, str, str]]) -> None:
        """(key, asset, analysis JSON) rows."""
        if not entries:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO model_lineage VALUES (?, ?, ?)", entries)
        self._db.execute("COMMIT")

    def start_run(self, command: str, selection: str) -> int:
        cursor = self._db.execute(
            "INSERT INTO runs (command, selection, status, pid, started_at) VALUES (?, ?, 'running', ?, ?)",
            (command, selection, os.getpid(), _now()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def record_steps(
        self,
        run_id: int,
        steps: list[StepRecord],
        checks: list[CheckRecord],
        metrics: list[MetricRecord] | None = None,
    ) -> None:
        """Write a batch of finished steps, check results and metrics in one transaction."""
        now = _now()
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO steps (run_id, asset, kind, attempt, action, status, reason, fingerprint,"
            " rows, seconds, error, finished_at, rows_read, rows_quarantined, rows_discarded, bytes_read,"
            " events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        self._db.execute("COMMIT")

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

    def flag_metric(self, run_id: int, asset: str, metric: str, column: str = "", env: str = "prod") -> None:
        self._db.execute(
            "UPDATE metrics SET flagged = 1"
            " WHERE run_id = ? AND env = ? AND asset = ? AND metric = ? AND column_name = ?",
            (run_id, env, asset, metric, column),
        )

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

    def finish_run(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, seconds = ?, summary = ? WHERE run_id = ?",
            (status, _now(), seconds, json.dumps(summary), run_id),
        )

    def mark_abandoned(self) -> int:
        """Runs left 'running' by a process that no longer exists are marked failed."""
        stale = [
            run_id
            for run_id, pid in self._db.execute(
                "SELECT run_id, pid FROM runs WHERE status = 'running'"
            ).fetchall()
            if not _alive(pid)
        ]
        for run_id in stale:
            self._db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, summary = ? WHERE run_id = ?",
                (_now(), json.dumps({"error": "the process running it died"}), run_id),
            )
        return len(stale)

    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT run_id, command, selection, status, started_at, finished_at, seconds, summary FROM runs"
            " ORDER BY run_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            RunRecord(
                run_id, command, selection, status, started, finished, seconds, json.loads(summary or "{}")
            )
            for run_id, command, selection, status, started, finished, seconds, summary in rows
        ]

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

    def last_build(self) -> dict[str, tuple[int, str, str]]:
        """Per asset: (run_id, status, finished_at) of its most recent build attempt."""
        rows = self._db.execute(
            "SELECT asset, run_id, status, finished_at FROM steps"
            " WHERE action = 'build' OR status != 'skipped' ORDER BY run_id, finished_at"
        ).fetchall()
        return {asset: (run_id, status, finished) for asset, run_id, status, finished in rows}

    def close(self) -> None:
        self._db.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
