"""Metrics as SQL relations: ``metrics.<name>`` rewritten into the metric layer's compiled query,
with filters on dimensions handed to it, then guarded like any statement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlglot import exp

from gristmill.project.metric_specs import MetricLayer
from gristmill.sql.guard import SqlRefused, guard_select
from gristmill.sql.metric_sql import MetricRelation, metric_relations, rewrite_metrics
from gristmill.sql.metrics import Filter, MetricQuery, compile_metric


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> MetricLayer:
    from gristmill.project.scaffold import create_demo
    from gristmill.workspace.facade import Workspace

    workspace = Workspace(create_demo(Path(tmp_path_factory.mktemp("metric_sql")) / "shop"))
    try:
        return workspace.project.metrics
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def relations() -> dict[str, MetricRelation]:
    grains = ("day", "week", "month", "quarter", "year")
    return metric_relations([("revenue", ("metric_time", "country", "customer"), grains)])


SERVED = {"marts.fct_invoice_line"}


def _rewriter(layer: MetricLayer, relations: dict[str, MetricRelation]) -> Callable[[exp.Query], exp.Query]:
    return lambda tree: rewrite_metrics(tree, layer, relations)


def _inner(query: exp.Query) -> exp.Select:
    subquery = query.find(exp.Subquery)
    assert subquery is not None and isinstance(subquery.this, exp.Select)
    return subquery.this


def test_a_dimension_filter_is_handed_to_the_metric_layer(
    layer: MetricLayer, relations: dict[str, MetricRelation]
) -> None:
    query = guard_select(
        "select metric_time__month, revenue from metrics.revenue where country in ('DE', 'FR')",
        SERVED,
        read="postgres",
        rewrite=_rewriter(layer, relations),
    )
    expected = compile_metric(
        layer, MetricQuery("revenue", (), "month", (Filter("country", "in", ("DE", "FR")),))
    )
    inner = _inner(query)
    assert inner.expressions[0].alias == "metric_time__month"
    inner.expressions[0] = inner.expressions[0].this  # the relation names the grain; the rest is the metric's
    assert inner.sql("duckdb") == expected.sql("duckdb")
    assert query.args.get("where") is None  # nothing left to filter outside


def test_other_conditions_stay_outside_and_group_by_goes_when_the_metric_is_bare(
    layer: MetricLayer, relations: dict[str, MetricRelation]
) -> None:
    query = guard_select(
        "select country, revenue from metrics.revenue where revenue > 10 and country = $1 group by country",
        SERVED,
        read="postgres",
        params=["Germany"],
        rewrite=_rewriter(layer, relations),
    )
    assert query.args["where"].sql() == "WHERE revenue > 10"
    assert query.args.get("group") is None
    summed = guard_select(
        "select country, sum(revenue) from metrics.revenue group by country",
        SERVED,
        rewrite=_rewriter(layer, relations),
    )
    assert summed.args.get("group") is not None  # valid as written: one row per country inside
    qualified = guard_select(  # as Metabase qualifies columns
        'select "metrics"."revenue"."country", "metrics"."revenue"."revenue" from "metrics"."revenue"',
        SERVED,
        read="postgres",
        rewrite=_rewriter(layer, relations),
    )
    assert 'metrics"."revenue"."' not in qualified.sql("duckdb")


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("select *, 1 from metrics.revenue", r"\* with other columns"),
        ("select x from metrics.nothing", "is not a metric"),
        ("select colour, revenue from metrics.revenue", 'has no column "colour"'),
        ("select revenue from metrics.revenue r join marts.fct_invoice_line f on true", "read alone"),
        ("select revenue from metrics.revenue where read_csv('/etc/passwd') is null", "read_csv"),
    ],
)
def test_what_the_metric_relations_refuse(
    layer: MetricLayer, relations: dict[str, MetricRelation], sql: str, said: str
) -> None:
    with pytest.raises(SqlRefused, match=said):
        guard_select(sql, SERVED, read="postgres", rewrite=_rewriter(layer, relations))


def test_a_metric_over_tables_out_of_scope_is_refused(
    layer: MetricLayer, relations: dict[str, MetricRelation]
) -> None:
    """A key reads a metric only when it may read the tables the metric reads."""
    with pytest.raises(SqlRefused, match="not a served table"):
        guard_select("select revenue from metrics.revenue", {"raw.x"}, rewrite=_rewriter(layer, relations))


def test_several_grains_label_the_finest_and_star_reads_every_column(
    layer: MetricLayer, relations: dict[str, MetricRelation]
) -> None:
    query = guard_select(
        "select metric_time__year, metric_time__month, revenue from metrics.revenue",
        SERVED,
        rewrite=_rewriter(layer, relations),
    )
    inner = _inner(query)
    assert [e.alias for e in inner.expressions] == ["metric_time__month", "metric_time__year", "revenue"]
    star = guard_select("select * from metrics.revenue limit 5", SERVED, rewrite=_rewriter(layer, relations))
    assert [e.name for e in star.expressions] == list(relations["revenue"].columns)
