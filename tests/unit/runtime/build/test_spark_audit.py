"""Checks on Spark: every check kind audited on a spark engine and on DuckDB over the same small
tables, through ``runtime.build.audit.audit`` itself -- the same failing counts, the same metric
values (row count, null rates, distinct ratios, min/max, freshness), and as few table scans: each
statement the audit sent is explained on its engine (Spark's physical plan, DuckDB's EXPLAIN) and
its scans counted, so the fused one-scan aggregate stays one scan on Spark. ``quarantine`` and
``drop`` checks set the same rows aside on both.

One Spark session for the module (tests/support/spark_engine.py); the tables are made through
the engines' own Arrow views."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.engines.base import Engine, Relation
from gristmill.engines.duckdb.memory import memory_engine
from gristmill.engines.registry import ENGINES
from gristmill.project.specs import CheckSpec
from gristmill.runtime.build.audit import Audit, Subject, audit
from gristmill.runtime.build.quarantine import set_aside
from gristmill.sql.render import render
from gristmill.state.history import open_history
from tests.support.spark_engine import spark_settings, start_shared_session

ASSET = "marts.orders"
ORDERS = pa.table(
    {
        "order_id": pa.array([1, 2, 3, 3, 4, 5, 6, 7], pa.int64()),
        "customer_id": pa.array([10, 11, None, 12, 99, 10, 11, 12], pa.int64()),
        "customer_key": pa.array([1, 2, -1, 3, -1, 1, 2, 3], pa.int64()),
        "status": pa.array(["active", "gone", None, "active", "lost", "active", "gone", "active"]),
        "amount": pa.array([5.0, 120.5, 0.0, 2000.0, 33.25, None, 7.5, 9.0], pa.float64()),
        "discount": pa.array([1.0, 200.0, 0.0, 5.0, None, 0.0, 1.0, 2.0], pa.float64()),
        "code": pa.array(["ABC-1", "abc-2", "XYZ-33", None, "QQ-4", "ABC-5", "ABC-6", "DEF-7"]),
        "email": pa.array(["a@x.io", "not-mail", None, "c@y.org", "d@z.com", "e@x.io", "f@", "g@x.io"]),
        "ordered_at": pa.array([datetime(2024, 1, d, 8 + d) for d in range(1, 9)], pa.timestamp("us")),
        "day": pa.array([datetime(2024, 1, d).date() for d in range(1, 9)], pa.date32()),
    }
)
CUSTOMERS = pa.table({"customer_id": pa.array([10, 11, 12], pa.int64())})


def check(kind: str, *columns: str, severity: str = "error", **params: Any) -> CheckSpec:
    return CheckSpec(kind, ASSET, columns, params, severity=severity)  # type: ignore[arg-type]


CHECKS = [
    check("not_null", "email"),
    check("accepted_values", "status", values=["active", "gone"]),
    check("range", "amount", min=0, max=1000),
    check("range", "amount", min=0, exclusive=True),
    check("regex", "code", pattern="[A-Z]{3}-[0-9]+"),
    check("format", "email", **{"as": "email"}),
    check("expression", sql="amount >= discount"),
    check("row_count", min=1, max=5),
    check("aggregate", "amount", function="mean", min=5, max=100),
    check("aggregate", "amount", function="stddev", max=10),
    check("aggregate", "discount", function="sum", min=0, max=100),
    check("unknown_members", "customer_key", max=1),
    check("freshness", "ordered_at", max_age="6h"),
    check("unique", "order_id"),
    check("unique", "customer_id", "status"),
    check("relationships", "customer_id", to="marts.customers.customer_id"),
    check("query", sql="select * from this where amount > discount * 100"),
    check("schema", expect={"order_id": "BIGINT", "amount": "DOUBLE", "missing": None}),
    check("anomaly", metric="row_count"),
    check("anomaly", "amount", metric="null_rate"),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    start_shared_session(tmp_path_factory.mktemp("spark"))
    settings = ProjectSettings(name="audit", engine=spark_settings())
    made = {
        "duckdb": memory_engine(),
        "spark": ENGINES["spark"].open(settings, tmp_path_factory.mktemp("t"), False),
    }
    try:
        yield made
    finally:
        for engine in made.values():
            engine.close()


@pytest.fixture
def tables(engines: dict[str, Engine]) -> dict[str, Engine]:
    """``marts.orders`` and ``marts.customers`` made afresh on both engines."""
    for engine in engines.values():
        for name, data in (("marts.orders", ORDERS), ("marts.customers", CUSTOMERS)):
            view = engine.register(f"arrow_{name.replace('.', '_')}", data)  # type: ignore[attr-defined]
            engine.create_table_as(Relation.of(name), exp.select(exp.Star()).from_(view))
    return engines


class Recording:
    """A real engine that keeps the queries the audit sends (to explain them afterwards)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent: list[exp.Expr] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def query(self, sql: exp.Expr) -> pa.Table:
        self.sent.append(sql.copy())
        return self.engine.query(sql)

    def row(self, query: exp.Query) -> dict[str, Any] | None:
        self.sent.append(query.copy())
        return self.engine.row(query)


def scans(engine: Engine, statement: exp.Expr) -> int:
    """Table scans in the engine's plan of ``statement``."""
    if engine.kind == "spark":
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        assert spark is not None
        plan = spark.sql(f"EXPLAIN {render(statement, 'spark')}").collect()[0][0]
        return len(re.findall(r"\bFileScan\b|\bScan parquet\b|\bLocalTableScan\b", plan))
    plan = engine.query(f"EXPLAIN {render(statement, 'duckdb')}").to_pylist()
    text = " ".join(str(v) for row in plan for v in row.values())
    return len(re.findall(r"\b(?:SEQ_SCAN|TABLE_SCAN)\b", text))


def run_audit(engine: Engine, folder: Path, *, table_rows: int | None) -> tuple[Audit, list[int]]:
    recording = Recording(engine)
    subject = Subject(
        ASSET,
        lambda name: engine.table(Relation.of(name)),
        rows_written=ORDERS.num_rows,
        table_rows=table_rows,
        time_column="ordered_at",
    )
    found = audit(subject, CHECKS, recording, open_history(folder / f"{engine.kind}.sqlite"))  # type: ignore[arg-type]
    return found, [scans(engine, statement) for statement in recording.sent]


def outcomes(found: Audit) -> dict[str, tuple[int, int]]:
    """Each check's failing count and how many samples it kept."""
    return {c.check.name: (c.failures, len(c.samples)) for c in found.checks}


def metrics(found: Audit) -> dict[tuple[str, str], float | None]:
    return {(m.metric, m.column): m.value for m in found.metrics}


@pytest.mark.parametrize(
    "table_rows", [ORDERS.num_rows, None], ids=["distinct_in_the_scan", "distinct_sampled"]
)
def test_every_check_kind_fails_the_same_rows_in_as_many_scans_on_spark(
    tables: dict[str, Engine], tmp_path: Path, table_rows: int | None
) -> None:
    duck, duck_scans = run_audit(tables["duckdb"], tmp_path, table_rows=table_rows)
    spark, spark_scans = run_audit(tables["spark"], tmp_path, table_rows=table_rows)

    assert outcomes(spark) == outcomes(duck)
    # every check kind found something to fail in this data (anomalies: no history yet)
    assert all(
        failures for name, (failures, _) in outcomes(duck).items() if not name.startswith("anomaly")
    ), outcomes(duck)
    duck_metrics, spark_metrics = metrics(duck), metrics(spark)
    assert duck_metrics.keys() == spark_metrics.keys()
    kinds = {metric for metric, _ in duck_metrics}
    assert {
        "row_count",
        "null_rate",
        "distinct_ratio",
        "min",
        "max",
        "freshness_hours",
        "rows_written",
    } <= kinds
    for key, value in duck_metrics.items():
        other = spark_metrics[key]
        if key[0] == "freshness_hours":  # measured at each audit's own now
            assert value is not None and other is not None and abs(value - other) < 0.1, key
        else:
            assert (value is None and other is None) or math.isclose(value, other, rel_tol=1e-9), (
                key,
                value,
                other,
            )  # type: ignore[arg-type]

    # the same statements, each scanning as many tables: the checks that take a query of their
    # own (two keys, a reference, a query) first, then one fused scan for every row and table
    # check and the metrics, then the distinct sample when the table's size is not known, and
    # a few failing rows of each failed row check (seven)
    assert spark_scans == duck_scans
    assert len(duck_scans) == 4 + 1 + (table_rows is None) + 7
    assert sum(duck_scans) == len(duck_scans) + 1  # only the reference reads two tables
    assert duck_scans[2] == 2


def test_quarantine_and_drop_set_the_same_rows_aside_on_spark(tables: dict[str, Engine]) -> None:
    checks = [
        check("not_null", "email", severity="quarantine"),
        check("accepted_values", "status", values=["active", "gone"], severity="quarantine"),
        check("range", "amount", min=0, max=1000, severity="drop"),
        check("expression", sql="amount >= discount", severity="drop"),
    ]
    found = {}
    for kind, engine in tables.items():
        target, quarantine = Relation.of(ASSET), Relation("marts", "orders__quarantine")
        aside = set_aside(engine, target, quarantine, checks, run_id=7)
        kept = sorted(
            r["order_id"]
            for r in engine.query(exp.select("order_id").from_(engine.table(target))).to_pylist()
        )
        moved = engine.query(
            exp.select("_gm_run_id", "_gm_reason", "_gm_record").from_(engine.table(quarantine))
        )
        records = sorted(
            (r["_gm_run_id"], r["_gm_reason"], json.loads(r["_gm_record"])["order_id"])
            for r in moved.to_pylist()
        )
        found[kind] = (
            {c.name: n for c, n in aside.failures.items()},
            aside.quarantined,
            aside.dropped,
            kept,
            records,
        )
    assert found["spark"] == found["duckdb"]
    _, quarantined, dropped, kept, records = found["duckdb"]
    assert quarantined == len(records) and quarantined + dropped + len(kept) == ORDERS.num_rows
    assert quarantined and dropped
