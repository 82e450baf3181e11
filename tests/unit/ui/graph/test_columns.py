"""Column lineage trees drawn as one small DAG: what feeds the column above it, what reads it below."""

from __future__ import annotations

from gristmill.plan.lineage import Lineage, Node
from gristmill.ui.graph.columns import column_graph


def test_upstream_above_the_column_and_readers_below() -> None:
    source = Node("raw.orders", "amount")
    staged = Node("staging.orders", "amount", (source,))
    lineage = Lineage(
        "marts.sales",
        "revenue",
        upstream=(Node("marts.sales", "revenue", (staged, Node("raw.fx", "rate"))),),
        downstream=(Node("marts.sales", "revenue", (Node("marts.by_month", "revenue"),)),),
    )
    picture = column_graph(lineage)
    feeds = {("staging.orders", "amount"), ("raw.orders", "amount"), ("raw.fx", "rate")}
    assert set(picture.upstream) == feeds
    assert picture.downstream == [("marts.by_month", "revenue")]
    y = {(n["asset"], n["column"]): n["y"] for n in picture.nodes}
    assert y[("raw.orders", "amount")] < y[("staging.orders", "amount")] < y[("marts.sales", "revenue")]
    assert y[("marts.sales", "revenue")] < y[("marts.by_month", "revenue")]
    assert [n["target"] for n in picture.nodes].count(True) == 1
    assert len(picture.edges) == 4
    assert all(n["x"] - n["w"] / 2 >= 0 and n["x"] + n["w"] / 2 <= picture.width for n in picture.nodes)


def test_a_column_nothing_feeds_or_reads() -> None:
    alone = (Node("raw.fx", "rate"),)
    lineage = Lineage("raw.fx", "rate", upstream=alone, downstream=alone)
    picture = column_graph(lineage)
    assert picture.upstream == picture.downstream == []
    assert len(picture.nodes) == 1
    assert picture.edges == []
