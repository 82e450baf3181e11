"""Data quality over time: check results and table metrics per run and environment, which anomaly
checks judge against and the quality report draws. A run's results are written with its steps
(``runs.record_steps``), in the same transaction, through ``insert_checks`` and ``insert_metrics``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Protocol

from gristmill.state.history.schema import Domain, locked
from gristmill.state.records import CheckRecord, MetricRecord


class Quality(Protocol):
    def metric_history(
        self, asset: str, metric: str, column: str = "", *, env: str = "prod", limit: int = 400
    ) -> list[MetricRecord]:
        """The latest ``limit`` non-null values of one metric, oldest first."""
        ...

    def flag_metric(self, run_id: int, asset: str, metric: str, column: str = "", env: str = "prod") -> None:
        """Mark a value an anomaly: later baselines leave it out."""
        ...

    def metric_series(
        self, assets: list[str], *, env: str = "prod", runs: int = 30
    ) -> list[MetricRecord]: ...

    def check_results(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[CheckRecord]: ...


def insert_checks(db: sqlite3.Connection, run_id: int, checks: Sequence[CheckRecord]) -> None:
    """Write a run's check results; the caller holds the lock and the transaction."""
    db.executemany(
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


def insert_metrics(db: sqlite3.Connection, run_id: int, metrics: Sequence[MetricRecord], now: str) -> None:
    """Write a run's table metrics (measured ``now`` unless they say when); the caller holds the
    lock and the transaction."""
    db.executemany(
        "INSERT INTO metrics (run_id, env, asset, metric, column_name, value, flagged, measured_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (run_id, m.env, m.asset, m.metric, m.column, m.value, int(m.flagged), m.measured_at or now)
            for m in metrics
        ],
    )


class SQLiteQuality(Domain):
    @locked
    def metric_history(
        self, asset: str, metric: str, column: str = "", *, env: str = "prod", limit: int = 400
    ) -> list[MetricRecord]:
        """The latest ``limit`` values of one metric, oldest first."""
        rows = self.db.execute(
            "SELECT run_id, value, flagged, measured_at FROM metrics WHERE asset = ? AND env = ?"
            " AND metric = ? AND column_name = ? AND value IS NOT NULL ORDER BY run_id DESC LIMIT ?",
            (asset, env, metric, column, limit),
        ).fetchall()
        return [
            MetricRecord(asset, metric, column, value, bool(flagged), run_id, at, env)
            for run_id, value, flagged, at in reversed(rows)
        ]

    @locked
    def flag_metric(self, run_id: int, asset: str, metric: str, column: str = "", env: str = "prod") -> None:
        self.db.execute(
            "UPDATE metrics SET flagged = 1"
            " WHERE run_id = ? AND env = ? AND asset = ? AND metric = ? AND column_name = ?",
            (run_id, env, asset, metric, column),
        )

    @locked
    def metric_series(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[MetricRecord]:
        """Every metric of these assets over their latest ``runs`` measuring runs, oldest first."""
        found: list[MetricRecord] = []
        for asset in assets:
            rows = self.db.execute(
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

    @locked
    def check_results(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[CheckRecord]:
        """The check results of these assets in ``env`` over their latest ``runs`` runs, oldest first."""
        found: list[CheckRecord] = []
        for asset in assets:
            rows = self.db.execute(
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
