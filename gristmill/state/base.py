"""The run-history protocol: SQLite by default; a PostgreSQL store implements the same calls."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from gristmill.state.records import (
    BackfillRecord,
    CheckRecord,
    LogRecord,
    MetricRecord,
    PartitionRecord,
    RunRecord,
    StepRecord,
    TickRecord,
)


class RunHistory(Protocol):
    def lake_cache(self) -> tuple[str, str] | None:
        """(catalog snapshot, LakeState JSON) remembered by the last run, if any."""
        ...

    def save_lake_cache(self, snapshot: str, state: str) -> None: ...

    def parse_summaries(self) -> dict[str, str]:
        """What earlier parses of model texts found, by text key."""
        ...

    def save_parse_summaries(self, summaries: dict[str, str]) -> None: ...

    def lineage(self, keys: list[str]) -> dict[str, str]:
        """Stored model analyses (column lineage, JSON) by key."""
        ...

    def save_lineage(self, entries: list[tuple[str, str, str]]) -> None:
        """(key, asset, analysis JSON) rows."""
        ...

    def start_run(self, command: str, selection: str) -> int: ...

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

    def finish_run(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None: ...

    def mark_abandoned(self, *, all_running: bool = False) -> int:
        """Mark runs whose process died as failed; returns how many."""
        ...

    def runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]: ...

    def run(self, run_id: int) -> RunRecord | None: ...

    def run_pid(self, run_id: int) -> int | None: ...

    def request_cancel(self, run_id: int, reason: str) -> None:
        """Ask a running run (in any process) to stop; it polls for this."""
        ...

    def cancel_requested(self, run_id: int) -> str | None:
        """Why another process asked this run to stop, if it did."""
        ...

    def step_logs(
        self, run_id: int, asset: str | None = None, *, grep: str | None = None, limit: int = 5000
    ) -> list[LogRecord]: ...

    def last_success(self) -> dict[str, tuple[int, str]]: ...

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

    def start_backfill(
        self, selection: str, start: str, end: str, partitions: list[tuple[str, str]]
    ) -> int: ...

    def set_partitions(
        self, backfill_id: int, rows: list[tuple[str, str, str, int | None, str | None]]
    ) -> None: ...

    def finish_backfill(self, backfill_id: int, status: str) -> None: ...

    def backfills(self, backfill_id: int | None = None, limit: int = 20) -> list[BackfillRecord]: ...

    def partitions(self, backfill_id: int) -> list[PartitionRecord]: ...

    def run_stats(self) -> dict[str, Any]: ...

    def steps(self, run_id: int) -> list[StepRecord]: ...

    def last_build(self) -> dict[str, tuple[int, str, str]]: ...

    def close(self) -> None: ...
