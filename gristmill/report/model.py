"""What a data-quality report shows: check results and metric histories of one run.

Plain values with no ties to the rest of gristmill, so any caller (the CLI, a notebook, a test)
can build a report from whatever it has at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CheckRow:
    """One check's result in this run, with its earlier statuses (oldest first)."""

    asset: str
    check: str
    severity: str
    status: str
    failures: int
    samples: tuple[dict[str, Any], ...] = ()
    history: tuple[str, ...] = ()
    detail: str | None = None
    columns: tuple[str, ...] = ()
    """The columns the check judges, when known; else the sample columns its name mentions."""


@dataclass(frozen=True)
class MetricPoint:
    """A metric's value in one run; ``None`` when the run did not measure it."""

    at: datetime
    value: float | None
    flagged: bool
    run_id: int


@dataclass(frozen=True)
class MetricSeries:
    """A metric of an asset (or of one of its columns) over runs, oldest first."""

    asset: str
    metric: str
    column: str | None
    points: tuple[MetricPoint, ...]


@dataclass(frozen=True)
class Report:
    """One run's check results and metric histories, as the page shows them."""

    title: str
    project: str
    env: str
    run_id: int
    generated_at: datetime
    checks: tuple[CheckRow, ...] = ()
    series: tuple[MetricSeries, ...] = ()
