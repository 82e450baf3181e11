"""DuckDB relations over Arrow, for Python models on an engine without relations of its own."""

from __future__ import annotations

import pyarrow as pa

from gristmill.engines.duckdb.relations import ArrowRelations


def test_a_relation_over_arrow_runs_in_a_private_duckdb() -> None:
    relations = ArrowRelations()
    try:
        relation = relations.relation(pa.table({"a": [1, 2, 3]}))
        assert relation.aggregate("sum(a) AS s").fetchall() == [(6,)]
    finally:
        relations.close()
    relations.close()  # closing twice is fine
