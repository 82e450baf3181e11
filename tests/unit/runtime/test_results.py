"""A run's status and summary follow from its steps: what interfaces print and alerts report."""

from __future__ import annotations

import subprocess
import sys

from gristmill.project.specs import CheckSpec
from gristmill.runtime.results import CheckResult, LoadResult, RunResult, StepResult

CHECK = CheckSpec("not_null", "mart.orders", ("id",))


def step(asset: str, status: str, **kwargs: object) -> StepResult:
    return StepResult(asset, "table", "build", status, "new", **kwargs)  # type: ignore[arg-type]


def test_a_run_of_successes_is_ok() -> None:
    run = RunResult(1, [step("a", "success", rows=3), step("b", "switched"), step("c", "skipped")])
    assert run.ok and run.status == "success"


def test_a_failed_or_cancelled_step_decides_the_status() -> None:
    assert RunResult(1, [step("a", "success"), step("b", "upstream_failed")]).status == "failed"
    assert RunResult(1, [step("a", "failed"), step("b", "cancelled")]).status == "cancelled"
    cancelled = RunResult(1, [step("a", "success")], cancelled="cancelled (interrupted)")
    assert not cancelled.ok and cancelled.status == "cancelled"


def test_the_summary_counts_rows_loads_checks_and_retries() -> None:
    load = LoadResult(rows_read=10, rows_written=8, rows_quarantined=1, rows_discarded=1)
    run = RunResult(
        7,
        [
            step("raw.a", "success", rows=8, load=load, attempts=3),
            step("mart.b", "success", rows=5, quarantined=2, dropped=1, checks=(CheckResult(CHECK, 0),)),
            step("mart.c", "failed", checks=(CheckResult(CHECK, 4),)),
            step("mart.d", "upstream_failed"),
        ],
        seconds=1.23456,
        abandoned=("mart.c",),
    )
    assert run.summary() == {
        "built": 2,
        "switched": 0,
        "skipped": 0,
        "failed": 1,
        "not_run": 1,
        "rows": 13,
        "quarantined": 3,
        "discarded": 2,
        "checks_passed": 1,
        "checks_failed": 1,
        "seconds": 1.235,
        "abandoned": 1,
        "retries": 2,
    }


def test_a_check_passes_without_failures() -> None:
    assert CheckResult(CHECK, 0).passed and not CheckResult(CHECK, 1).passed


def test_results_import_no_executor_and_no_data_library() -> None:
    """Interfaces that only print results must not pay for the run machinery or pyarrow."""
    code = (
        "import sys, gristmill.runtime.results, gristmill.runtime.run.events\n"
        "print(sorted(m for m in sys.modules if m.startswith(('gristmill.runtime', 'pyarrow', 'duckdb'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(
        [
            "gristmill.runtime",
            "gristmill.runtime.results",
            "gristmill.runtime.run",
            "gristmill.runtime.run.events",
        ]
    )
