"""The demo's metrics through joins, filters, the time spine and a pre-aggregation give the
numbers of hand-written SQL over the same built tables, and a join that would repeat a
measure's rows is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot

from gristmill.errors import BadQuery
from gristmill.project.scaffold import create_demo
from gristmill.workspace import Workspace
from gristmill.workspace.metrics import ask, metric_sql
from tests.conftest import Cli

FACT, CUSTOMER = "marts.fct_invoice_line", "marts.dim_customer"


def materialized(root: Path) -> Path:
    """The demo with its commented ``materialize: daily`` switched on."""
    sales = root / "metrics" / "sales.yml"
    sales.write_text(sales.read_text().replace("    # materialize: daily", "    materialize: daily"))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace = Workspace(materialized(create_demo(tmp_path_factory.mktemp("metrics_joins") / "shop")))
    assert workspace.run().ok
    yield workspace
    workspace.close()


def rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def same(workspace: Workspace, answer: pa.Table, sql: str) -> None:
    expected = rows(workspace.query(sql))
    assert rows(answer) == expected
    assert expected  # a comparison of nothing proves nothing


def test_a_dimension_of_another_model_is_reached_through_an_entity(built: Workspace) -> None:
    expected = (
        f"select cast(date_trunc('year', f.invoice_date) as date), c.support_rep, sum(f.revenue)"
        f" from {FACT} f left join {CUSTOMER} c on f.customer_key = c.customer_key"
        " where c.city in ('Berlin', 'Paris') group by 1, 2 order by 1, 2"
    )
    for by, where in (("customer__support_rep", "customer__city"), ("support_rep", "city")):
        answer = built.metric("revenue", by=[by], grain="year", where=[f"{where}:in:Berlin,Paris"])
        assert answer.table.column_names == ["metric_time", by, "revenue"]
        same(built, answer.table, expected)


def test_joined_dimensions_work_for_ratio_and_cumulative_metrics(built: Workspace) -> None:
    join = f"{FACT} f left join {CUSTOMER} c on f.customer_key = c.customer_key"
    same(
        built,
        built.metric("revenue_per_invoice", by=["support_rep"]).table,
        f"select c.support_rep, sum(f.revenue)::double / count(distinct f.invoice_id) from {join}"
        " group by 1 order by 1",
    )
    months = (
        f"select unnest(generate_series(min(date_trunc('month', f.invoice_date)),"
        f" max(date_trunc('month', f.invoice_date)), interval 1 month))::date as b from {join}"
        " where c.support_rep = 'Jane Peacock'"
    )
    same(
        built,
        built.metric("revenue_running", grain="month", where=["support_rep:eq:Jane Peacock"]).table,
        f"select b, (select sum(f.revenue) from {join} where f.invoice_date < b + interval 1 month"
        f" and c.support_rep = 'Jane Peacock') from ({months}) order by 1",
    )


def test_a_fan_out_join_and_an_unknown_prefix_are_refused(built: Workspace) -> None:
    with pytest.raises(BadQuery) as caught:  # customers has no invoice entity
        built.metric("revenue", by=["invoice__support_rep"])
    assert caught.value.parameter == "by" and "no dimension" in caught.value.message
    with pytest.raises(BadQuery) as caught:
        built.metric("revenue", by=["customer__nope"])
    assert caught.value.parameter == "by" and "customer__support_rep" in str(caught.value.hint)


def test_a_metric_filter_keeps_only_its_rows(built: Workspace) -> None:
    same(
        built,
        built.metric("revenue_germany", grain="year").table,
        f"select cast(date_trunc('year', invoice_date) as date), sum(revenue) from {FACT}"
        " where billing_country = 'Germany' group by 1 order by 1",
    )


def test_a_filter_on_a_ratio_numerator_applies_to_it_alone(built: Workspace) -> None:
    same(
        built,
        built.metric("germany_share", grain="year", by=["support_rep"]).table,
        f"select cast(date_trunc('year', f.invoice_date) as date), c.support_rep,"
        " sum(case when f.billing_country = 'Germany' then f.revenue end)::double / sum(f.revenue)"
        f" from {FACT} f left join {CUSTOMER} c on f.customer_key = c.customer_key"
        " group by 1, 2 order by 1, 2",
    )


def test_the_time_spine_shows_periods_without_rows_filled_with_zero(built: Workspace) -> None:
    answer = built.metric("units", grain="month", where=["country:eq:Germany"])
    same(
        built,
        answer.table,
        f"with m as (select cast(date_trunc('month', invoice_date) as date) as m, sum(quantity) as u"
        f" from {FACT} where billing_country = 'Germany' group by 1),"
        " s as (select unnest(generate_series(min(m), max(m), interval 1 month))::date as m from m)"
        " select s.m, coalesce(m.u, 0) from s left join m using (m) order by 1",
    )
    assert 0 in answer.table.column("units").to_pylist()  # a month without German sales shows


def test_a_materialized_ratio_reads_its_pre_aggregation(built: Workspace) -> None:
    answer = built.metric(
        "average_unit_price", grain="quarter", by=["country"], where=["country:in:Germany,USA"]
    )
    assert answer.preaggregation == "metrics.average_unit_price_daily"
    assert "metrics.average_unit_price_daily" in answer.sql and FACT not in answer.sql
    same(
        built,
        answer.table,
        f"select cast(date_trunc('quarter', invoice_date) as date), billing_country,"
        f" sum(revenue)::double / nullif(sum(quantity), 0) from {FACT}"
        " where billing_country in ('Germany', 'USA') group by 1, 2 order by 1, 2",
    )
    by_rep = built.metric("average_unit_price", by=["support_rep"])  # a joined dimension: the base table
    assert by_rep.preaggregation is None and FACT in by_rep.sql


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_the_new_sql_renders_for_each_engine(built: Workspace, dialect: str) -> None:
    for name, by in (("revenue", ["support_rep"]), ("units", ["country"]), ("revenue_ytd", [])):
        sql = metric_sql(built.project, ask(name, by, "month", ["country:in:DE,FR"]), dialect)
        sqlglot.parse_one(sql, dialect=dialect)


def test_the_pre_aggregation_is_a_model_of_the_dag(built: Workspace, cli: Cli) -> None:
    code, out = cli("ls", project=built.root)
    assert code == 0 and "metrics.average_unit_price_daily" in out
    assert "metrics.average_unit_price_daily" in built.project.models
    assert built.query("select count(*) from metrics.average_unit_price_daily").column(0)[0].as_py() > 0
    code, out = cli("metrics", "query", "average_unit_price", "--grain", "month", "--sql", project=built.root)
    assert code == 0 and "read from the pre-aggregation metrics.average_unit_price_daily" in out
    assert "FROM metrics.average_unit_price_daily" in out
