"""A first build's ``this``: no rows, and columns typed as the model's own output columns, so a
comparison with them is between like types on every engine."""

from __future__ import annotations

import sqlglot

from gristmill.project.own_table import renderings

MODEL = """select order_id, amount * 2 as doubled
from raw.shop__orders o
where not is_incremental()
   or order_id > (select max(order_id) from this)
   or doubled > (select max(doubled) + max(gone) from this)
"""


def _full(sql: str) -> str:
    both = renderings(
        sql, asset="marts.orders", kind="incremental", file="m.sql", first_line=1, dialect="duckdb"
    )
    assert both is not None
    return both[0]


def test_this_takes_the_types_of_the_models_own_select_with_no_rows() -> None:
    full = _full(MODEL)
    assert full.count("\n") == MODEL.count("\n")  # lines keep their numbers
    assert 'SELECT order_id AS "order_id" FROM raw.shop__orders AS o WHERE FALSE' in full
    # a column the model does not output is a NULL of no particular type
    assert 'SELECT amount * 2 AS "doubled", NULL AS "gone" FROM raw.shop__orders AS o WHERE FALSE' in full
    sqlglot.parse_one(full, read="duckdb")


def test_a_model_whose_from_reads_this_gets_untyped_nulls() -> None:
    full = _full("select o.order_id from this join raw.shop__orders o on o.order_id > this.order_id\n")
    assert '(SELECT NULL AS "order_id" WHERE false) AS this' in full
