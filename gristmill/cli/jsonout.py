"""``--output json``: the results of ``run``, ``check``, ``plan`` and ``ls`` as one JSON document.

The shapes are a contract with scripts (documented in docs/cli.md, section "JSON output"): every
document carries ``"format": "gristmill/<command>"`` and ``"version": 1``; keys are only ever added
within a version, never renamed or removed. Values are JSON types only (timestamps as ISO text,
durations in seconds). Imported only when JSON output is asked for."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.workspace.types import AssetInfo, CheckResult, CheckRun, Plan, RunResult

VERSION = 1


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """A sample value as JSON: dates and times as ISO text, decimals and odd floats as text,
    bytes as hex, anything else by its text."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _number(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def _check(result: CheckResult) -> dict[str, Any]:
    check = result.check
    return {
        "check": check.name,
        "kind": check.kind,
        "columns": list(check.columns),
        "severity": check.severity,
        "passed": result.passed,
        "failures": result.failures,
        "detail": result.detail,
        "location": check.location,
        "samples": [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in result.samples
        ],
    }


def run_document(result: RunResult, env: str, warnings: Iterable[str] = ()) -> dict[str, Any]:
    steps = []
    for step in result.steps:
        load = step.load
        steps.append(
            {
                "asset": step.asset,
                "kind": step.kind,
                "action": step.action,
                "status": step.status,
                "reason": step.reason,
                "rows": step.rows,
                "seconds": _number(step.seconds),
                "attempts": step.attempts,
                "error": step.error,
                "quarantined": (load.rows_quarantined if load else 0) + step.quarantined,
                "discarded": load.rows_discarded if load else 0,
                "events": list(load.events) if load else [],
                "checks": [_check(c) for c in step.checks],
            }
        )
    return {
        "format": "gristmill/run",
        "version": VERSION,
        "run_id": result.run_id,
        "env": env,
        "status": result.status,
        "ok": result.ok,
        "summary": result.summary(),
        "warnings": list(warnings),
        "steps": steps,
    }


def check_document(run: CheckRun, warnings: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "format": "gristmill/check",
        "version": VERSION,
        "run_id": run.run_id,
        "env": run.env,
        "ok": run.ok,
        "summary": run.summary(),
        "warnings": list(warnings),
        "assets": [
            {
                "asset": outcome.asset,
                "kind": outcome.kind,
                "status": outcome.status,
                "error": outcome.error,
                "checks": [_check(c) for c in outcome.checks],
            }
            for outcome in run.assets
        ],
    }


def plan_document(plan: Plan, warnings: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "format": "gristmill/plan",
        "version": VERSION,
        "env": plan.env,
        "summary": {
            "build": len(plan.builds),
            "switch": len(plan.switches),
            "skip": len(plan.skips),
            "removed": len(plan.removed),
        },
        "warnings": list(warnings),
        "steps": [
            {
                "asset": step.name,
                "kind": step.asset.kind,
                "change": None if step.asset.kind == "source" else step.change,
                "changed_columns": list(step.changed_columns),
                "action": step.action,
                "reason": step.reason,
                "upstream": list(step.asset.upstream),
            }
            for step in plan.steps
        ],
        "removed": list(plan.removed),
    }


def assets_document(infos: list[AssetInfo], env: str, warnings: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "format": "gristmill/ls",
        "version": VERSION,
        "env": env,
        "warnings": list(warnings),
        "assets": [
            {
                "asset": info.name,
                "kind": info.kind,
                "rows": info.rows,
                "built_at": info.built_at,
                "last_status": info.last_status,
                "last_run": info.last_run,
                "upstream": list(info.upstream),
                "owner": info.owner,
            }
            for info in infos
        ],
    }
