"""What the run history holds, as plain records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUN_DIED = "the process running it died; what it had not committed was rolled back"
"""The error of a run found 'running' after its process died (kill -9, power loss)."""


@dataclass(frozen=True)
class StepRecord:
    asset: str
    kind: str
    action: str
    status: str
    reason: str
    fingerprint: str | None = None
    rows: int | None = None
    seconds: float | None = None
    error: str | None = None
    attempt: int = 1
    rows_read: int | None = None
    rows_quarantined: int | None = None
    rows_discarded: int | None = None
    bytes_read: int | None = None
    started_at: str | None = None
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    command: str
    selection: str
    status: str
    started_at: str
    finished_at: str | None
    seconds: float | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class MetricRecord:
    """One measured value of a table metric (``column`` is "" for the whole table)."""

    asset: str
    metric: str
    column: str
    value: float | None
    flagged: bool = False
    """An anomaly check found it out of line: later baselines leave it out."""
    run_id: int = 0
    measured_at: str = ""
    env: str = "prod"


@dataclass(frozen=True)
class CheckRecord:
    """One check's outcome in one run."""

    run_id: int
    asset: str
    check: str
    severity: str
    status: str
    failures: int
    samples: tuple[dict[str, Any], ...] = ()
    detail: str | None = None
    finished_at: str = ""
    env: str = "prod"


@dataclass(frozen=True)
class LogRecord:
    """One line a step logged."""

    run_id: int
    asset: str
    attempt: int
    seq: int
    at: str
    level: str
    message: str


@dataclass(frozen=True)
class TickRecord:
    """One tick of a schedule: claimed once, whatever happened to it."""

    schedule: str
    tick_at: str
    status: str
    """claimed | started | skipped | success | failed | cancelled"""
    run_id: int | None = None
    claimed_at: str = ""
    started_at: str | None = None
    note: str = ""


@dataclass(frozen=True)
class PartitionRecord:
    """One partition of one asset in a backfill."""

    backfill_id: int
    asset: str
    partition: str
    status: str
    """pending | success | failed | skipped"""
    run_id: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class BackfillRecord:
    backfill_id: int
    selection: str
    start: str
    end: str
    status: str
    created_at: str
    finished_at: str | None
    partitions: dict[str, int]
    """Count of partitions by status."""
