"""Golden SQL of the checks (``tests/fixtures/sql/checks/``): every check kind ``checks/compile.py``
knows, fused into one scan or run alone with samples, the metric aggregates and the distinct
sample the anomaly checks judge."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from gristmill.checks import metrics
from gristmill.checks.compile import compile_checks, failing_row, sample_query
from gristmill.project.specs import CheckSpec
from tests.golden import assert_golden

ASSET = "marts.orders"


def table_for(name: str) -> exp.Table:
    schema, table = name.split(".")
    return exp.table_(f"{table}__v2", db=schema, catalog="lake", quoted=True)


def check(kind: str, *columns: str, **params: Any) -> CheckSpec:
    return CheckSpec(kind, ASSET, columns, params)


ROW_CHECKS = {
    "not_null": check("not_null", "email"),
    "accepted_values": check("accepted_values", "status", values=["active", "gone"]),
    "range": check("range", "amount", min=0, max=1000),
    "range_exclusive": check("range", "amount", min=0, exclusive=True),
    "regex": check("regex", "code", pattern="[A-Z]{3}-[0-9]+"),
    "format_email": check("format", "email", **{"as": "email"}),
    "expression": check("expression", sql="amount >= discount"),
}
TABLE_CHECKS = {
    "row_count": check("row_count", min=1, max=1_000_000),
    "aggregate": check("aggregate", "amount", function="mean", min=5, max=500),
    "unknown_members": check("unknown_members", "customer_key", max=3),
    "freshness": check("freshness", "ordered_at", max_age="6h"),
}
SAMPLED_CHECKS = {
    "unique": check("unique", "order_id"),
    "unique_composite": check("unique", "order_id", "line"),
    "relationships": check("relationships", "customer_id", to="marts.customers.customer_id"),
    "query": check("query", sql="select * from this where amount > (select max(cap) from marts.limits)"),
}


@pytest.mark.parametrize("name", sorted(ROW_CHECKS))
def test_row_check(name: str) -> None:
    spec = ROW_CHECKS[name]
    [query] = compile_checks([spec], table_for)
    assert_golden(f"checks/{name}", query.query)
    sample = sample_query(spec, table_for(ASSET), 5)
    assert sample is not None
    assert_golden(f"checks/{name}_sample", sample)
    quarantine = exp.select(exp.Star()).from_(table_for(ASSET)).where(failing_row(spec))
    assert_golden(f"checks/{name}_failing_row", quarantine)


@pytest.mark.parametrize("name", sorted(TABLE_CHECKS))
def test_table_check(name: str) -> None:
    [query] = compile_checks([TABLE_CHECKS[name]], table_for)
    assert_golden(f"checks/{name}", query.query)


@pytest.mark.parametrize("name", sorted(SAMPLED_CHECKS))
def test_check_with_samples(name: str) -> None:
    [query] = compile_checks([SAMPLED_CHECKS[name]], table_for, samples=5)
    assert query.sampled
    assert_golden(f"checks/{name}", query.query)


def test_checks_and_metrics_fuse_into_one_scan() -> None:
    columns = [
        ("order_id", "BIGINT"),
        ("amount", "DECIMAL(12,2)"),
        ("ordered_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    columns.append(("payload", "STRUCT(a INTEGER)"))
    profile = metrics.profile(columns, distinct=True)
    specs = [*ROW_CHECKS.values(), *TABLE_CHECKS.values(), SAMPLED_CHECKS["unique"]]
    queries = compile_checks(specs, table_for, {ASSET: profile})
    fused = [q for q in queries if not q.sampled]
    assert len(fused) == 1 and len(fused[0].metrics) == len(profile)
    assert_golden("checks/fused_with_metrics", fused[0].query)


@pytest.mark.parametrize("rows", [1000, 10_000_000])
def test_distinct_sample(rows: int) -> None:
    columns = [("order_id", "BIGINT"), ("status", "VARCHAR"), ("payload", "STRUCT(a INTEGER)")]
    query = metrics.distinct_query(table_for(ASSET), columns, rows)
    assert query is not None
    assert_golden(f"checks/distinct_{'sampled' if rows > metrics.DISTINCT_SAMPLE_ROWS else 'whole'}", query)
