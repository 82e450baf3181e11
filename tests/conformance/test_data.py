"""What data and names survive an engine: every Arrow type the engines map, NULLs, unicode and
quoted identifiers; and that a replace or a rolled-back transaction leaves what a reader expects
(views over a replaced table, tables made inside a failed transaction)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.engines.base import Engine, Relation, Transactions
from tests.conformance.conftest import needs

T = Relation("conformance", "t")
AT = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)

COLUMNS: dict[str, pa.Array] = {
    "b": pa.array([True, None, False]),
    "i8": pa.array([-128, None, 127], pa.int8()),
    "i16": pa.array([-32768, None, 32767], pa.int16()),
    "i32": pa.array([-(2**31), None, 2**31 - 1], pa.int32()),
    "i64": pa.array([-(2**63), None, 2**63 - 1], pa.int64()),
    "u8": pa.array([0, None, 255], pa.uint8()),
    "u16": pa.array([0, None, 65535], pa.uint16()),
    "u32": pa.array([0, None, 2**32 - 1], pa.uint32()),
    "u64": pa.array([0, None, 2**64 - 1], pa.uint64()),
    "f32": pa.array([1.5, None, -0.25], pa.float32()),
    "f64": pa.array([1.5, None, 1e300], pa.float64()),
    "dec": pa.array([Decimal("12345678.90"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
    "s": pa.array(["plain", None, "ünïcödé ✓ 'quoted' \"double\""]),
    "ls": pa.array(["a", None, "b"], pa.large_string()),
    "bin": pa.array([b"\x00\xff", None, b""], pa.binary()),
    "d": pa.array([dt.date(2024, 1, 31), None, dt.date(1970, 1, 1)], pa.date32()),
    "d64": pa.array([dt.date(2024, 1, 31), None, dt.date(1999, 12, 31)], pa.date64()),
    "tm": pa.array([dt.time(12, 34, 56, 789), None, dt.time(0, 0)], pa.time64("us")),
    "ts": pa.array([AT, None, dt.datetime(1970, 1, 1)], pa.timestamp("us")),
    "ts_ns": pa.array([AT, None, dt.datetime(2000, 1, 1)], pa.timestamp("ns")),
    "tstz": pa.array([AT.replace(tzinfo=dt.UTC), None, AT.replace(tzinfo=dt.UTC)], pa.timestamp("us", "UTC")),
    "list": pa.array([[1, 2, None], None, []], pa.list_(pa.int64())),
    "list_s": pa.array([["x", "y"], None, ["z"]], pa.list_(pa.string())),
    "struct": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}], pa.struct([("a", pa.int64()),
                                                                                    ("b", pa.string())])),
    "map": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
    "list_struct": pa.array([[{"a": 1}], None, []], pa.list_(pa.struct([("a", pa.int64())]))),
    "dict": pa.array(["red", None, "red"]).dictionary_encode(),
    "nothing": pa.array([None, None, None], pa.null()),
}  # fmt: skip


def _same(read: Any, written: Any) -> bool:
    """``read`` holds ``written``: equal, or (an engine that keeps nested values as JSON) its
    JSON text, or (a map) its (key, value) pairs as an object."""
    if isinstance(read, str) and isinstance(written, dict | list):
        read = json.loads(read)
        if isinstance(read, dict) and isinstance(written, list):
            written = dict(written)
    if isinstance(read, list) and isinstance(written, list) and len(read) == len(written):
        return all(_same(r, w) for r, w in zip(read, written, strict=True))
    if isinstance(read, dict) and isinstance(written, dict):
        return read.keys() == written.keys() and all(_same(read[k], written[k]) for k in read)
    return bool(read == written)


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_every_arrow_type_and_null_round_trips(engine: Engine, name: str) -> None:
    column = COLUMNS[name]
    assert engine.write_arrow(T, pa.table({"id": [1, 2, 3], name: column}).to_reader()) == 3
    read = engine.query(exp.select(exp.column(name)).from_(engine.table(T)).order_by("id"))
    assert read.num_rows == 3
    values = read.column(0).to_pylist()
    assert values[1] is None  # NULL stays NULL, whatever the type
    for got, want in zip(values, column.to_pylist(), strict=True):
        assert _same(got, want), f"{name}: wrote {want!r}, read {got!r}"


def test_unicode_and_quoted_identifiers(engine: Engine) -> None:
    odd = Relation("Schéma Ünï", 'Tåble "q" x')
    data = pa.table({"Ça va?": [1], 'a"b': ["x"], "select": [True]})
    assert engine.write_arrow(odd, data.to_reader()) == 1
    assert engine.exists(odd)
    assert [name for name, _ in engine.describe(engine.table(odd))] == ["Ça va?", 'a"b', "select"]
    assert [name for name, _ in engine.columns()[odd]] == ["Ça va?", 'a"b', "select"]
    quoted = exp.column("Ça va?", quoted=True)
    assert engine.rows(exp.select(quoted.as_("v")).from_(engine.table(odd))) == [{"v": 1}]
    engine.drop(odd)
    assert not engine.exists(odd)


def test_a_view_over_a_replaced_table_reads_the_new_rows(engine: Engine) -> None:
    engine.write_arrow(T, pa.table({"id": [1, 2]}).to_reader())
    v = Relation("conformance_views", "v")
    engine.create_view_as(v, exp.select("id").from_(engine.table(T)))
    engine.create_table_as(T, exp.select(exp.Literal.number(7).as_("id")))
    assert engine.rows(exp.select("id").from_(engine.table(v))) == [{"id": 7}]
    assert engine.write_arrow(T, pa.table({"id": [8, 9]}).to_reader()) == 2
    assert engine.rows(exp.select("id").from_(engine.table(v)).order_by("id")) == [{"id": 8}, {"id": 9}]


def test_a_rolled_back_transaction_undoes_tables_it_made_and_replaced(engine: Engine) -> None:
    transactions = needs(engine, Transactions)
    engine.write_arrow(T, pa.table({"id": [1]}).to_reader())
    made = Relation("conformance_new", "made")
    with pytest.raises(RuntimeError), transactions.transaction():
        engine.create_table_as(made, exp.select(exp.Literal.number(1).as_("x")))
        engine.create_table_as(T, exp.select(exp.Literal.number(5).as_("other")))
        raise RuntimeError("a blocking check failed")
    assert not engine.exists(made)
    assert engine.rows(exp.select("id").from_(engine.table(T))) == [{"id": 1}]
    # the schema made inside the rolled-back transaction is made again when needed
    engine.create_table_as(made, exp.select(exp.Literal.number(1).as_("x")))
    assert engine.exists(made)
