"""Table metrics: what the fused scan and the distinct sample measure, on a real DuckDB."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from gristmill.checks.metrics import derive, distinct_query, distinct_ratios, profile
from gristmill.workspace import Workspace

COLUMNS = [
    ("id", "BIGINT"),
    ("grp", "INTEGER"),
    ("name", "VARCHAR"),
    ("at", "TIMESTAMP"),
    ("tags", "VARCHAR[]"),
]


def table(rows: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        f"create table t as select range as id, case when range % 10 = 0 then null else range % 4 end as grp,"
        f" 'n' || (range % 1000) as name, timestamp '2026-11-20 12:00:00' - to_seconds(range) as at,"
        f" ['a'] as tags from range({rows})"
    )
    return con


def measure(con: duckdb.DuckDBPyConnection, rows: int, *, small: bool) -> dict[tuple[str, str], float | None]:
    aggregates = profile(COLUMNS, distinct=small)
    select = exp.select(*(exp.alias_(a.expression, f"m{i}") for i, a in enumerate(aggregates)))
    values = con.execute(select.from_("t").sql("duckdb")).fetchone()
    assert values is not None
    found = derive(aggregates, list(values), datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    if not small:
        query = distinct_query(exp.to_table("t"), COLUMNS, rows)
        assert query is not None
        cursor = con.execute(query.sql("duckdb"))
        names = [d[0] for d in cursor.description]
        found += distinct_ratios(COLUMNS, dict(zip(names, cursor.fetchone() or (), strict=True)))
    return {(m.metric, m.column): m.value for m in found}


def test_a_small_table_is_measured_in_one_scan() -> None:
    got = measure(table(1000), 1000, small=True)
    assert got[("row_count", "")] == 1000
    assert got[("null_rate", "grp")] == pytest.approx(0.1)
    assert got[("null_rate", "id")] == 0
    assert got[("min", "grp")] == 0 and got[("max", "grp")] == 3
    assert ("min", "name") not in got  # text is not ranged
    assert got[("freshness_hours", "at")] == 24.0
    assert got[("distinct_ratio", "id")] == 1
    assert got[("distinct_ratio", "grp")] == pytest.approx(4 / 900)
    assert ("distinct_ratio", "tags") not in got  # nested values are not counted


def test_a_large_table_counts_distinct_values_on_a_block_sample() -> None:
    rows = 1_000_000
    query = distinct_query(exp.to_table("t"), COLUMNS, rows)
    assert query is not None and "USING SAMPLE SYSTEM (25.0 PERCENT)" in query.sql("duckdb")
    got = measure(table(rows), rows, small=False)
    assert got[("row_count", "")] == rows
    assert got[("distinct_ratio", "id")] == 1  # unique in the sample as in the table
    assert (got[("distinct_ratio", "name")] or 1) < 0.01


def test_settings_turn_metrics_and_samples_off(make_project: Callable[..., Path]) -> None:
    files = {
        "sources/src.yml": "kind: files\ntables:\n  t: {path: data/t.csv}\n",
        "data/t.csv": "id,email\n1,a@x.io\n2,\n3,\n",
        "checks/t.yml": "raw.src__t:\n  - not_null: {column: email, severity: warn}\n",
    }
    root = make_project(files)
    run = Workspace(root).run()
    [step] = run.steps
    assert len(step.checks[0].samples) == 2
    assert {m.metric for m in step.metrics} >= {"row_count", "null_rate", "rows_written"}

    off = make_project(files, toml='name = "t"\n[checks]\nmetrics = false\nsamples = 0\n')
    shutil.rmtree(off / ".gristmill")  # the same folder: start over
    [step] = Workspace(off).run().steps
    assert step.checks[0].failures == 2 and step.checks[0].samples == ()
    assert [m.metric for m in step.metrics] == ["rows_written"]  # what the build wrote, not measured
