"""What the run history holds, as plain records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
