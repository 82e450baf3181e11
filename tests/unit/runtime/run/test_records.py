"""What the run history keeps of a step: its record, its checks' records and its log line."""

from __future__ import annotations

from types import SimpleNamespace

from gristmill.project.specs import CheckSpec
from gristmill.runtime.results import CheckResult, LoadResult, StepResult
from gristmill.runtime.run.records import check_records, describe, step_record

CHECK = CheckSpec("unique", "mart.orders", ("id",))


def test_a_build_is_described_in_one_line() -> None:
    load = LoadResult(rows_read=1200, rows_written=1000, events=["raw.orders: column note added"])
    outcome = StepResult(
        "raw.orders",
        "source",
        "build",
        "success",
        "new",
        rows=1000,
        seconds=1.5,
        load=load,
        quarantined=3,
        checks=(CheckResult(CHECK, 0), CheckResult(CheckSpec("not_null", "raw.orders", ("note",)), 2)),
    )
    assert describe(outcome) == (
        "1,000 rows, 1,200 read, raw.orders: column note added, 3 quarantined, 0 dropped, "
        "checks 1/2 passed (not_null(note) failed) in 1.50s"
    )


def test_a_failed_build_is_described_by_its_error() -> None:
    outcome = StepResult("mart.a", "table", "build", "failed", "new", seconds=0.25, error="boom")
    assert describe(outcome) == "failed after 0.25s: boom"


def test_a_step_record_carries_the_load_counts_and_the_plan_fingerprint() -> None:
    load = LoadResult(rows_read=5, rows_written=4, rows_quarantined=1, bytes_read=99, events=["late"])
    outcome = StepResult("raw.a", "source", "build", "success", "new", 4, 0.123456, load=load, attempts=2)
    record = step_record(outcome, SimpleNamespace(fingerprint="f1"), "2026-01-01T00:00:00")  # type: ignore[arg-type]
    assert (record.fingerprint, record.rows, record.seconds, record.attempt) == ("f1", 4, 0.1235, 2)
    assert (record.rows_read, record.rows_quarantined, record.rows_discarded, record.bytes_read) == (
        5,
        1,
        0,
        99,
    )
    assert record.events == ("late",) and record.started_at == "2026-01-01T00:00:00"


def test_a_model_step_record_keeps_its_own_events() -> None:
    outcome = StepResult("mart.a", "table", "build", "success", "new", 1, events=("2 late rows",))
    record = step_record(outcome, SimpleNamespace(fingerprint=None))  # type: ignore[arg-type]
    assert record.rows_read is None and record.events == ("2 late rows",)


def test_check_records_name_each_check_and_its_verdict() -> None:
    records = check_records([CheckResult(CHECK, 0), CheckResult(CHECK, 2, ({"id": 1},), "dup")], 9, "dev")
    assert [(r.run_id, r.check, r.status, r.failures, r.env) for r in records] == [
        (9, "unique(id)", "pass", 0, "dev"),
        (9, "unique(id)", "fail", 2, "dev"),
    ]
    assert records[1].samples == ({"id": 1},) and records[1].detail == "dup"
