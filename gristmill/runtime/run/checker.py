"""Check the published tables of an environment without building anything (``gristmill check``).

Each asset's checks run on the table its environment serves, its metrics are measured and its
anomaly checks judged, and the outcome is recorded as a run of its own, so check history and
metric trends grow between builds too. Quarantine and drop checks only count here: the data is
already published, so nothing is moved.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from gristmill._util.text import shorten
from gristmill.config.secrets import redact
from gristmill.engines.base import Engine, Relation
from gristmill.errors import GristmillError
from gristmill.plan.graph import Asset
from gristmill.runtime.build.audit import Audit, CheckResult, Subject, audit, measured, time_column
from gristmill.runtime.run.executor import check_records
from gristmill.state.history import RunHistory
from gristmill.state.records import StepRecord


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


def check_published(
    assets: Sequence[Asset],
    *,
    engine: Engine,
    history: RunHistory,
    run_id: int,
    pointers: Mapping[str, str],
    env: str,
    metrics: bool = True,
    samples: int = 5,
) -> CheckRun:
    """Audit each asset's served table; record every outcome under ``run_id``."""
    started = time.perf_counter()
    run = CheckRun(run_id, env)

    def physical(name: str) -> exp.Table:
        return engine.table(Relation.of(pointers.get(name, name)))

    for asset in assets:
        begun = time.perf_counter()
        served = Relation.of(pointers.get(asset.name, asset.name))
        if not engine.exists(served):
            outcome = AssetCheck(asset.name, asset.kind, "not_built")
            run.assets.append(outcome)
            history.runs.record_steps(run_id, [_step(outcome)], [])
            continue
        subject = Subject(
            asset.name,
            physical,
            env,
            run_id,
            time_column=time_column(asset),
            personal=tuple(asset.contract.pii) if asset.contract else (),
            measure=measured(asset, metrics),
            samples=samples,
            isolated=True,
        )
        try:
            audited = audit(subject, asset.checks, engine, history)
        except GristmillError as err:
            outcome = AssetCheck(
                asset.name, asset.kind, "failed", error=shorten(redact(str(err))), seconds=_since(begun)
            )
            audited = Audit()
        else:
            outcome = AssetCheck(asset.name, asset.kind, "checked", audited.checks, seconds=_since(begun))
        run.assets.append(outcome)
        history.runs.record_steps(
            run_id, [_step(outcome)], check_records(outcome.checks, run_id, env), list(audited.metrics)
        )
        for value in audited.flagged:
            history.quality.flag_metric(value.run_id, value.asset, value.metric, value.column, value.env)
    run.seconds = time.perf_counter() - started
    return run


def _since(started: float) -> float:
    return time.perf_counter() - started


def _step(outcome: AssetCheck) -> StepRecord:
    failed = [c for c in outcome.checks if not c.passed]
    reason = f"{len(outcome.checks)} checks, {len(failed)} failing" if outcome.checks else outcome.status
    return StepRecord(
        outcome.asset,
        outcome.kind,
        "check",
        "failed"
        if outcome.status == "failed"
        else ("skipped" if outcome.status == "not_built" else "success"),
        reason if outcome.status != "not_built" else "not built in this environment",
        seconds=round(outcome.seconds, 4),
        error=outcome.error,
    )
