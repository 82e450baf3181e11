"""Each optional capability an engine declares (engines/base.py), tested where declared; an
engine without one skips these tests with the capability named."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.engines.base import (
    ArrowViews,
    Engine,
    Interruptible,
    Maintenance,
    NativeRelations,
    Relation,
    SparkDataFrames,
    Transactions,
)
from gristmill.errors import EngineError
from tests.conformance.conftest import needs

T = Relation("conformance", "t")


def ids(n: int) -> pa.RecordBatchReader:
    return pa.table({"id": pa.array(range(n), pa.int64())}).to_reader()


def count(engine: Engine) -> int:
    row = engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(engine.table(T)))
    assert row is not None
    return int(row["n"])


def test_a_failed_transaction_rolls_back(engine: Engine) -> None:
    transactions = needs(engine, Transactions)
    engine.write_arrow(T, ids(10))
    with pytest.raises(RuntimeError), transactions.transaction():
        engine.write_arrow(T, ids(3))
        assert count(engine) == 3  # visible inside the transaction (checks read it)
        raise RuntimeError("a blocking check failed")
    assert count(engine) == 10


def test_grouped_transactions_commit_or_roll_back_together(engine: Engine) -> None:
    transactions = needs(engine, Transactions)
    engine.write_arrow(T, ids(10))
    with transactions.transaction(group=True):
        engine.write_arrow(T, ids(2), mode="append")
    with transactions.transaction(group=True):
        engine.write_arrow(T, ids(3), mode="append")
    transactions.rollback()
    assert count(engine) == 10
    with transactions.transaction(group=True):
        engine.write_arrow(T, ids(2), mode="append")
    transactions.commit()
    assert count(engine) == 12


def test_arrow_views_register_and_read_back(engine: Engine) -> None:
    views = needs(engine, ArrowViews)
    view = views.register("_conformance_rows", pa.table({"id": [1, 2, 3]}))
    try:
        assert engine.create_table_as(T, exp.select("id").from_(view)) == 3
        # registered again under the same name: replaced
        view = views.register("_conformance_rows", pa.table({"id": [7]}))
        assert engine.rows(exp.select("id").from_(view)) == [{"id": 7}]
    finally:
        views.unregister("_conformance_rows")
    assert views.read_arrow(engine.table(T)).read_all().column("id").to_pylist() == [1, 2, 3]


def test_maintenance_keeps_every_row(engine: Engine) -> None:
    maintenance = needs(engine, Maintenance)
    engine.write_arrow(T, ids(100))
    for _ in range(5):
        engine.write_arrow(T, ids(10), mode="append")
    maintenance.compact(T)
    maintenance.compact(Relation("conformance", "missing"))  # nothing when it is not a table
    maintenance.reclaim(0)
    assert count(engine) == 150


def test_an_interrupt_fails_the_transaction(engine: Engine) -> None:
    interruptible = needs(engine, Interruptible)
    transactions = needs(engine, Transactions)
    engine.write_arrow(T, ids(10))
    with pytest.raises(EngineError), transactions.transaction():
        engine.write_arrow(T, ids(3))
        stopper = threading.Thread(target=interruptible.interrupt)
        stopper.start()
        stopper.join()
        assert interruptible.interrupted
    with transactions.transaction():  # the interrupt was for that transaction only
        assert count(engine) == 10


def test_native_relations_stage_their_own_and_refuse_others(engine: Engine) -> None:
    relations = needs(engine, NativeRelations)
    engine.write_arrow(T, ids(5))
    lazy = relations.relation(engine.table(T))
    staged = relations.stage_relation(lazy)
    assert staged is not None
    assert engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(staged)) == {"n": 5}
    assert relations.stage_relation(pa.table({"id": [1]})) is None


def test_spark_dataframes_are_lazy_and_staged_by_the_engine(engine: Engine) -> None:
    frames = needs(engine, SparkDataFrames)
    engine.write_arrow(T, ids(5))
    lazy = frames.dataframe(engine.table(T))
    staged = frames.stage_dataframe(lazy.filter("id > 1"))
    assert staged is not None
    assert engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(staged)) == {"n": 3}
    assert frames.spark.version and frames.stage_dataframe(pa.table({"id": [1]})) is None
