"""What the run history keeps of a run's outcomes: a step's record, its checks' records, and the
one log line that sums up a build. Shared by runs and check runs."""

from __future__ import annotations

from collections.abc import Sequence

from gristmill.plan.planner import Step
from gristmill.runtime.results import CheckResult, StepResult
from gristmill.state.records import CheckRecord, StepRecord


def check_records(results: Sequence[CheckResult], run_id: int, env: str) -> list[CheckRecord]:
    return [
        CheckRecord(
            run_id,
            c.check.asset,
            c.check.name,
            c.check.severity,
            "pass" if c.passed else "fail",
            c.failures,
            c.samples,
            c.detail,
            env=env,
        )
        for c in results
    ]


def step_record(outcome: StepResult, step: Step, started_at: str | None = None) -> StepRecord:
    load = outcome.load
    return StepRecord(
        outcome.asset,
        outcome.kind,
        outcome.action,
        outcome.status,
        outcome.reason,
        step.fingerprint,
        outcome.rows,
        round(outcome.seconds, 4),
        outcome.error,
        rows_read=load.rows_read if load else None,
        rows_quarantined=load.rows_quarantined if load else None,
        rows_discarded=load.rows_discarded if load else None,
        bytes_read=load.bytes_read if load else None,
        events=tuple(load.events) if load else outcome.events,
        attempt=outcome.attempts,
        started_at=started_at,
    )


def describe(outcome: StepResult) -> str:
    """One log line on what a build did."""
    if outcome.status != "success":
        return f"failed after {outcome.seconds:.2f}s: {outcome.error}"
    parts = [f"{outcome.rows:,} rows" if outcome.rows is not None else "done"]
    if outcome.load is not None:
        parts.append(f"{outcome.load.rows_read:,} read")
        parts += list(outcome.load.events)
    parts += list(outcome.events)
    if outcome.quarantined or outcome.dropped:
        parts.append(f"{outcome.quarantined:,} quarantined, {outcome.dropped:,} dropped")
    if outcome.checks:
        failed = [c.check.name for c in outcome.checks if not c.passed]
        passed = len(outcome.checks) - len(failed)
        parts.append(
            f"checks {passed}/{len(outcome.checks)} passed"
            + (f" ({', '.join(failed)} failed)" if failed else "")
        )
    return f"{', '.join(parts)} in {outcome.seconds:.2f}s"
