"""Golden SQL of the model kinds: every statement ``sql/`` builds for a view, table, incremental
(append, merge, delete+insert, time intervals), snapshot, dimension, fact and static partitions,
rendered for each dialect (``tests/fixtures/sql/models/``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlglot import exp

from gristmill.sql import dimensional as dim
from gristmill.sql import partitions, writes
from gristmill.sql.parse import parse_model
from gristmill.sql.rewrite import render
from tests.golden import assert_golden

TARGET = exp.table_("orders", db="marts", catalog="lake", quoted=True)
STAGE = exp.table_("_gm_stage_orders", db="marts", catalog="lake", quoted=True)
INTERVALS = exp.table_("intervals", db="_gristmill", catalog="lake", quoted=True)
PARTITIONS = exp.table_("partitions", db="_gristmill", catalog="lake", quoted=True)
COLUMNS = ["order_id", "customer_id", "amount", "ordered_at"]
JAN1, JAN2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
RUN_TIME = datetime(2024, 1, 5, 6, 30, tzinfo=UTC)

MODEL_SQL = """
select o.order_id, o.customer_id, sum(i.price) as amount, o.ordered_at
from raw.orders as o join staging.items i on i.order_id = o.order_id
where o.status <> 'cancelled'
group by all
"""


def _query() -> exp.Query:
    """The model's query with each asset it reads pointed at its physical table."""
    parsed = parse_model(MODEL_SQL, file="models/orders.sql")
    return render(
        parsed,
        {"raw.orders": ("lake", "raw", "orders__v3"), "staging.items": ("lake", "staging", "items__v1")},
    )


def _golden(name: str, statements: Sequence[exp.Expr]) -> None:
    for index, statement in enumerate(statements, 1):
        assert_golden(f"models/{name}_{index}" if len(statements) > 1 else f"models/{name}", statement)


def test_view_and_table_body() -> None:
    _golden("table_query", [_query()])


def test_passthrough_model_keeps_its_text() -> None:
    parsed = parse_model("select * from raw.orders where x = = 1", file="m.sql", passthrough=True)
    assert parsed.passthrough
    query = render(parsed, {"raw.orders": ("lake", "raw", "orders__v3")})
    assert "lake" in query.sql()


def test_incremental_append() -> None:
    _golden("incremental_append", writes.append(TARGET, STAGE, COLUMNS))


def test_incremental_append_at_a_boundary() -> None:
    boundary = exp.GTE(this=writes.col("ordered_at"), expression=dim.moment(JAN1))
    _golden("incremental_append_boundary", writes.append(TARGET, STAGE, COLUMNS, boundary))


def test_incremental_merge() -> None:
    _golden(
        "incremental_merge", writes.merge(TARGET, STAGE, COLUMNS, ["order_id"], ["ordered_at", "_gm_ord"])
    )


def test_merge_with_cdc_deletes() -> None:
    columns = [*COLUMNS, writes.OPERATION]
    _golden("merge_cdc", writes.merge(TARGET, STAGE, columns, ["order_id"], ["_gm_ord"]))


def test_incremental_delete_insert() -> None:
    statements = writes.merge(TARGET, STAGE, COLUMNS, ["customer_id"], ["_gm_ord"], keep_all=True)
    _golden("incremental_delete_insert", statements)


@pytest.mark.parametrize("dtype", ["TIMESTAMP WITH TIME ZONE", "DATE"])
def test_incremental_by_time_interval(dtype: str) -> None:
    suffix = "zoned" if dtype != "DATE" else "date"
    _golden(
        f"time_slice_{suffix}", dim.replace_slice(TARGET, _query(), COLUMNS, "ordered_at", JAN1, JAN2, dtype)
    )


def test_interval_bookkeeping() -> None:
    _golden("intervals_record", [dim.record_intervals(INTERVALS, "marts.orders", JAN1, JAN2, "day", 7)])
    _golden("intervals_forget", [dim.forget_intervals(INTERVALS, "marts.orders", JAN1, JAN2)])
    _golden("intervals_read", [dim.read_intervals(INTERVALS, "marts.orders")])


def test_late_rows_in_closed_intervals() -> None:
    typed = [("order_id", "BIGINT"), ("amount", "DOUBLE"), ("ordered_at", "TIMESTAMP")]
    digests = dim.interval_digests(_query(), typed, "ordered_at", "TIMESTAMP", "hour", JAN1, JAN2)
    _golden("interval_digests", [digests])


def test_source_scd2() -> None:
    _golden("scd2_full", writes.scd2(TARGET, STAGE, COLUMNS, ["order_id"], ["_gm_ord"], full_snapshot=True))


HISTORY_COLUMNS = (("customer_id", "BIGINT"), ("name", "VARCHAR"), ("city", "VARCHAR"), ("tier", "INTEGER"))
CUSTOMERS = exp.table_("customers", db="marts", catalog="lake", quoted=True)
STAGED = exp.table_("_gm_stage_customers", db="marts", catalog="lake", quoted=True)


def _history(surrogate: str | None) -> dim.History:
    return dim.History(
        CUSTOMERS,
        HISTORY_COLUMNS,
        ("customer_id",),
        ("city", "tier"),
        RUN_TIME,
        time="updated_at" if surrogate is None else None,
        surrogate=surrogate,
    )


def test_snapshot_scd2() -> None:
    history = _history(None)
    source = dim.incoming(STAGED, history).subquery("incoming")
    _golden("snapshot_incoming", [dim.incoming(STAGED, history)])
    _golden("snapshot_create", [dim.history_create(source, history)])
    _golden("snapshot_update", dim.history_update(source, history))


def test_dimension_with_surrogate_keys_and_unknown_member() -> None:
    history = _history("customer_key")
    source = dim.incoming(STAGED, history).subquery("incoming")
    _golden("dimension_create", [dim.history_create(source, history)])
    _golden("dimension_update", dim.history_update(source, history))
    _golden("dimension_unknown_member_update", [dim.unknown_member_update(history, ["city"])])


def test_fact_with_point_in_time_lookups() -> None:
    lookups = [
        dim.KeyLookup("customer_key", CUSTOMERS, ("customer_id",), at="ordered_at", at_type="TIMESTAMP"),
        dim.KeyLookup("product_key", exp.table_("products", db="marts", quoted=True), ("product_id",)),
        dim.KeyLookup(
            "store_key", exp.table_("stores", db="marts", quoted=True), ("store_id",), history=False
        ),
    ]
    _golden("fact_select", [dim.fact_select(_query(), COLUMNS, lookups)])
    _golden("fact_fix_unknown", [dim.fix_unknown(TARGET, lookups[0])])
    _golden("fact_unknown_counts", [dim.unknown_member_counts(TARGET, ["customer_key", "product_key"])])


def test_static_partitions() -> None:
    values = ["eu", "us"]
    _golden("partitions_replace", partitions.replace_partitions(TARGET, _query(), COLUMNS, "region", values))
    _golden("partitions_strays", [partitions.strays(_query(), "region", values)])
    _golden("partitions_record", [partitions.record_partitions(PARTITIONS, "marts.orders", ["eu", "us"], 7)])
    _golden("partitions_forget", [partitions.forget_partitions(PARTITIONS, "marts.orders", ["eu"])])
    _golden("partitions_read", [partitions.read_partitions(PARTITIONS, "marts.orders")])
