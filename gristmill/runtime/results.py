"""What a run reports: each step's outcome, a source load's counts, each check's verdict, the
run as a whole, and a check run of published tables. Plain data in one module that imports
nothing else of the runtime, so everything that reads results (events, alerts, lineage, the CLI's
output) depends on this and not on the executor that makes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gristmill.project.specs import CheckSpec
from gristmill.state.lake.cursors import Cursor
from gristmill.state.records import MetricRecord


@dataclass(frozen=True)
class CheckResult:
    check: CheckSpec
    failures: int
    samples: tuple[dict[str, Any], ...] = ()
    """A few failing rows (duplicate keys for unique), values of personal-data columns masked."""
    detail: str | None = None
    """What an anomaly check saw: the value, the expected band and its basis."""

    @property
    def passed(self) -> bool:
        return self.failures == 0


@dataclass
class LoadResult:
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_discarded: int = 0
    bytes_read: int = 0
    events: list[str] = field(default_factory=list)
    cursor: Cursor | None = None


@dataclass(frozen=True)
class StepResult:
    asset: str
    kind: str
    action: str
    status: str  # success | switched | skipped | failed | upstream_failed | cancelled
    reason: str
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    checks: tuple[CheckResult, ...] = ()
    load: LoadResult | None = None
    """What a source load read, wrote, set aside and noticed."""
    quarantined: int = 0
    """Rows failing quarantine checks, moved to ``<asset>__quarantine``."""
    dropped: int = 0
    """Rows failing drop checks, removed."""
    metrics: tuple[MetricRecord, ...] = ()
    """The new version's table metrics."""
    attempts: int = 1
    events: tuple[str, ...] = ()
    """What a model's build noticed: late rows, unknown members, columns added."""
    failure: BaseException | None = field(default=None, compare=False, repr=False)
    """The error behind a failed attempt, for the runner to decide on a retry."""


@dataclass
class RunResult:
    run_id: int
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: str | None = None
    """Why the run was asked to stop (a cancel, Ctrl-C, its time limit), if it was."""
    abandoned: tuple[str, ...] = ()
    """Steps that did not stop within the grace period: their work may still run in this process,
    which must not use the engine again (nothing they wrote commits)."""

    @property
    def ok(self) -> bool:
        return self.cancelled is None and all(
            s.status in ("success", "switched", "skipped") for s in self.steps
        )

    @property
    def status(self) -> str:
        if self.cancelled is not None or any(s.status == "cancelled" for s in self.steps):
            return "cancelled"
        return "success" if self.ok else "failed"

    def summary(self) -> dict[str, int | float]:
        count = lambda status: sum(1 for s in self.steps if s.status == status)  # noqa: E731
        checks = [c for s in self.steps for c in s.checks]
        summary: dict[str, int | float] = {
            "built": count("success"),
            "switched": count("switched"),
            "skipped": count("skipped"),
            "failed": count("failed"),
            "not_run": count("upstream_failed"),
            "rows": sum(s.rows or 0 for s in self.steps if s.action == "build"),
            "quarantined": sum(s.load.rows_quarantined for s in self.steps if s.load)
            + sum(s.quarantined for s in self.steps),
            "discarded": sum(s.load.rows_discarded for s in self.steps if s.load)
            + sum(s.dropped for s in self.steps),
            "checks_passed": sum(c.passed for c in checks),
            "checks_failed": sum(not c.passed for c in checks),
            "seconds": round(self.seconds, 3),
        }
        if count("cancelled"):
            summary["cancelled"] = count("cancelled")
        if self.abandoned:
            summary["abandoned"] = len(self.abandoned)
        retried = sum(s.attempts - 1 for s in self.steps if s.attempts > 1)
        if retried:
            summary["retries"] = retried
        return summary


@dataclass(frozen=True)
class AssetCheck:
    asset: str
    kind: str
    status: str  # checked | failed | not_built
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    seconds: float = 0.0


@dataclass
class CheckRun:
    run_id: int
    env: str
    assets: list[AssetCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def results(self) -> list[CheckResult]:
        return [c for a in self.assets for c in a.checks]

    @property
    def ok(self) -> bool:
        blocking = any(not c.passed and c.check.severity == "error" for c in self.results)
        return not blocking and all(a.status != "failed" for a in self.assets)

    def summary(self) -> dict[str, int | float]:
        results = self.results
        return {
            "assets": sum(a.status == "checked" for a in self.assets),
            "not_built": sum(a.status == "not_built" for a in self.assets),
            "errors": sum(a.status == "failed" for a in self.assets),
            "checks_passed": sum(c.passed for c in results),
            "checks_failed": sum(not c.passed and c.check.severity == "error" for c in results),
            "checks_warned": sum(not c.passed and c.check.severity != "error" for c in results),
            "anomalies": sum(not c.passed and c.check.kind == "anomaly" for c in results),
            "seconds": round(self.seconds, 3),
        }
