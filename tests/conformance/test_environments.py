"""An environment's views on every engine: switching one points its views at physical tables the
engine holds, wherever the engine keeps them (the postgres engine's cases run under a schema
prefix, where a view naming the bare schema would find nothing)."""

from __future__ import annotations

from sqlglot import exp

from gristmill.engines.base import Engine, Relation, Transactions
from gristmill.state.lake.environments import read_pointers, switch
from tests.conformance.conftest import needs


def test_switching_an_environment_serves_its_physical_tables(engine: Engine) -> None:
    physical = Relation("_gm_marts", "orders__v1")
    engine.create_table_as(physical, exp.select(exp.Literal.number(7).as_("n")))
    with needs(engine, Transactions).transaction():
        switch(engine, "dev", {"marts.orders": "_gm_marts.orders__v1"}, [], 1)
    served = engine.query(exp.select("n").from_(engine.table(Relation("marts__dev", "orders"))))
    assert served.to_pylist() == [{"n": 7}]
    assert read_pointers(engine, "dev") == {"marts.orders": "_gm_marts.orders__v1"}
