"""Keyset pages: the condition after a cursor selects exactly the rows after it, with or without
knowing which key columns hold NULLs (the engine's faster form must not change the answer)."""

from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from gristmill.server.reading import ServedColumn
from gristmill.server.tables import paging

A, B = ServedColumn("a", "BIGINT"), ServedColumn("b", "VARCHAR")
ROWS = [(1, "x"), (1, "y"), (2, None), (2, "x"), (None, "x"), (None, None), (3, "z"), (3, "z")]


def _table(rows: list[tuple[int | None, str | None]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a BIGINT, b VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)
    return con


@pytest.mark.parametrize("desc", [False, True])
@pytest.mark.parametrize(
    ("rows", "claims"),
    [
        (ROWS, [None, frozenset({"a", "b"})]),  # NULLs in both: only the claims that allow them
        ([r for r in ROWS if r[0] is not None], [None, frozenset({"b"})]),  # none in a
        ([r for r in ROWS if None not in r], [None, frozenset()]),  # none at all
    ],
)
def test_after_selects_the_rows_at_and_after_the_cursor_whatever_is_known_of_nulls(
    desc: bool, rows: list[tuple[int | None, str | None]], claims: list[frozenset[str] | None]
) -> None:
    con = _table(rows)
    key = [(A, desc), (B, False)]
    order = exp.select("a", "b").from_("t").order_by(*paging.order_by(key))
    ordered = con.execute(order.sql(dialect="duckdb")).fetchall()
    for a, b in set(ordered):
        values = (paging.key_text(a), paging.key_text(b))
        start = ordered.index((a, b))
        for nullable in claims:
            query = order.copy().where(paging.after(key, values, nullable))
            assert con.execute(query.sql(dialect="duckdb")).fetchall() == ordered[start:], (a, b, nullable)


def test_a_first_column_without_nulls_gets_a_plain_bound() -> None:
    built = paging.after([(A, False), (B, False)], ("5", "x"), frozenset()).sql(dialect="duckdb")
    assert built.startswith('("a" >= 5 AND') and "IS NULL" not in built
    kept = paging.after([(A, False), (B, False)], ("5", "x"), None).sql(dialect="duckdb")
    assert '"a" IS NULL' in kept and '"a" >= 5' not in kept
