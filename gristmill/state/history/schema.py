"""The run history's SQLite file: one connection, its lock, and the numbered schema migrations.

Run history lives in SQLite (WAL, synchronous=NORMAL). Schema changes are numbered migrations
applied on open, tracked in ``PRAGMA user_version``. Any process may read while a run writes.
Writes are a few rows per step, so bookkeeping stays at microseconds per step. Every domain of
the history (runs, quality, schedules, backfills, caches, API keys) shares one ``Database``.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from gristmill.errors import StateError

_P = ParamSpec("_P")
_T = TypeVar("_T")
_D = TypeVar("_D", bound="Domain")

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
    -- the lake's versions, pointers and columns as of one catalog snapshot (see state/lake/lake_state.py)
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
    """
    -- API keys for `gristmill serve`: only a salted hash of each key's secret is kept, the key
    -- itself is shown once, when it is created (see state/history/api_keys.py)
    CREATE TABLE api_keys (
        key_id      TEXT PRIMARY KEY,       -- the public part of the key, for lookup
        name        TEXT NOT NULL,
        salt        TEXT NOT NULL,          -- hex
        digest      TEXT NOT NULL,          -- hex HMAC-SHA256(salt, secret)
        schemas     TEXT NOT NULL,          -- JSON list (empty: every schema)
        rate        REAL,                   -- requests per second (NULL: the server's default)
        burst       REAL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT,
        revoked_at  TEXT
    )
    """,
    """
    -- a schedule paused from the web UI: the scheduler skips its triggers until it is resumed
    ALTER TABLE schedule_state ADD COLUMN paused_at TEXT
    """,
)


def now() -> str:
    """The time stamps the history writes: ISO UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Database:
    """One SQLite connection shared by every domain of the history, opened and migrated once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One statement sequence at a time on the shared connection: a run's steps read history
        # from their threads while the coordinator writes.
        self.lock = threading.RLock()
        try:
            self.connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise StateError(
                f"cannot open run history {path}: {err}",
                hint="if the file is damaged, move it away; the lake itself is unaffected",
            ) from None

    def _migrate(self) -> None:
        db = self.connection
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(
                f"run history was written by a newer Gristmill (schema {version})", hint="upgrade gristmill"
            )
        for number in range(version, len(MIGRATIONS)):
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] == number:  # another process may have won
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class Domain:
    """One domain's calls over the shared database; its methods run under the database's lock."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.db = database.connection


def locked(method: Callable[Concatenate[_D, _P], _T]) -> Callable[Concatenate[_D, _P], _T]:
    """Run the method holding the database's lock (reentrant: a locked method may call another)."""

    @functools.wraps(method)
    def call(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self.database.lock:
            return method(self, *args, **kwargs)

    return call
