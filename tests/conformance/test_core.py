"""The core every engine provides: statements as ASTs, results as Arrow and rows, tables and
views from queries and record batches, staging, and column types as sqlglot DataType."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.errors import EngineError
from gristmill.sql import types

T = Relation("conformance", "t")


def ids(n: int) -> pa.RecordBatchReader:
    return pa.table({"id": pa.array(range(n), pa.int64())}).to_reader()


def count(engine: Engine, relation: Relation = T) -> int:
    row = engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(engine.table(relation)))
    assert row is not None
    return int(row["n"])


def test_execute_and_query_round_trip(engine: Engine) -> None:
    engine.ensure_table(T, [("id", types.build("BIGINT")), ("name", types.build("VARCHAR"))])
    insert = exp.insert(
        exp.values([exp.tuple_(exp.Literal.number(1), exp.Literal.string("a"))]), engine.table(T)
    )
    assert engine.execute(insert) == 1
    result = engine.query(exp.select("id", "name").from_(engine.table(T)))
    assert result.to_pylist() == [{"id": 1, "name": "a"}]
    assert engine.rows(exp.select("name").from_(engine.table(T))) == [{"name": "a"}]


def test_write_arrow_replaces_and_appends(engine: Engine) -> None:
    assert engine.write_arrow(T, ids(10)) == 10
    assert engine.write_arrow(T, ids(5), mode="append") == 5
    assert count(engine) == 15
    assert engine.write_arrow(T, ids(3)) == 3
    assert count(engine) == 3


def test_create_table_as_replaces_atomically(engine: Engine) -> None:
    engine.write_arrow(T, ids(4))
    failing = exp.select(exp.cast(exp.Literal.string("not a number"), exp.DataType.build("INT")).as_("id"))
    with pytest.raises(EngineError):
        engine.create_table_as(T, failing)
    assert count(engine) == 4  # the failed replacement left the table as it was
    assert engine.create_table_as(T, exp.select("id").from_(engine.table(T)).where("id < 2")) == 2


def test_views_and_tables_replace_each_other(engine: Engine) -> None:
    engine.write_arrow(T, ids(4))
    v = Relation("conformance", "v")
    engine.create_view_as(v, exp.select("id").from_(engine.table(T)))
    assert engine.exists(v)
    assert count(engine, v) == 4
    assert engine.create_table_as(v, exp.select("id").from_(engine.table(T)).where("id > 1")) == 2
    engine.create_view_as(v, exp.select("id").from_(engine.table(T)))
    assert count(engine, v) == 4
    engine.drop(v)
    assert not engine.exists(v)
    engine.drop(v)  # nothing when it does not exist


def test_stage_lands_batches_and_queries(engine: Engine) -> None:
    staged = engine.stage(ids(6))
    again = engine.stage(exp.select("id").from_(staged).where("id >= 3"))
    row = engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(again))
    assert row == {"n": 3}


def test_describe_gives_types_as_data_types(engine: Engine) -> None:
    data = pa.table({"id": pa.array([1], pa.int64()), "name": ["a"], "at": pa.array([0], pa.timestamp("us"))})
    engine.write_arrow(T, data.to_reader())
    described = engine.describe(engine.table(T))
    assert [name for name, _ in described] == ["id", "name", "at"]
    assert all(isinstance(dtype, exp.DataType) for _, dtype in described)
    kinds = [dtype.this for _, dtype in described]
    assert kinds[0] == exp.DataType.Type.BIGINT
    assert kinds[1] in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)
    assert kinds[2] in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ)
    # A type the engine printed renders back for its dialect as it printed it, and parses again.
    for _, dtype in described:
        assert types.parse(types.render(dtype, engine.dialect), engine.dialect) == dtype
    assert engine.describe(exp.select("id").from_(engine.table(T)).subquery("q"))[0][0] == "id"


def test_ensure_table_creates_once_and_columns_lists_it(engine: Engine) -> None:
    columns = [("id", types.build("BIGINT")), ("at", types.build("TIMESTAMP WITH TIME ZONE"))]
    engine.ensure_table(T, columns)
    row = pa.table({"id": [1], "at": pa.array([0], pa.timestamp("us", "UTC"))})
    engine.write_arrow(T, row.to_reader(), "append")
    engine.ensure_table(T, columns)  # exists: kept, rows and all
    assert count(engine) == 1
    listed = engine.columns()[T]
    assert [name for name, _ in listed] == ["id", "at"]
    assert listed[1][1].this == exp.DataType.Type.TIMESTAMPTZ
