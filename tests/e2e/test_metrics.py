"""The demo project's metrics (metrics/sales.yml) give the same numbers as hand-written SQL over
the same built tables, for each metric type; filter values are data, never SQL; the CLI prints
them; the SQL renders for every engine."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
import pytest
import sqlglot

from gristmill.errors import BadQuery
from gristmill.project.scaffold import create_demo
from gristmill.workspace import Workspace
from gristmill.workspace.metrics import ask, metric_sql
from tests.conftest import Cli

FACT = "marts.fct_invoice_line"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = create_demo(tmp_path_factory.mktemp("metrics") / "shop")
    workspace = Workspace(root)
    assert workspace.run().ok
    yield workspace
    workspace.close()


def rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def same(workspace: Workspace, answer: pa.Table, sql: str) -> None:
    expected = rows(workspace.query(sql))
    assert rows(answer) == expected
    assert expected  # a comparison of nothing proves nothing


def test_a_simple_metric_by_month_and_country_equals_a_group_by(built: Workspace) -> None:
    answer = built.metric("revenue", by=["country"], grain="month", where=["country:in:Germany,France"])
    assert answer.table.column_names == ["metric_time", "country", "revenue"]
    same(
        built,
        answer.table,
        f"select cast(date_trunc('month', invoice_date) as date), billing_country, sum(revenue) from {FACT}"
        " where billing_country in ('Germany', 'France') group by all order by 1, 2",
    )


def test_count_distinct_and_a_total_without_keys(built: Workspace) -> None:
    same(built, built.metric("buyers").table, f"select count(distinct customer_key) from {FACT}")
    same(
        built,
        built.metric("invoices", grain="quarter", where=["metric_time:gte:2023-01-01"]).table,
        f"select cast(date_trunc('quarter', invoice_date) as date), count(distinct invoice_id) from {FACT}"
        " where invoice_date >= date '2023-01-01' group by 1 order by 1",
    )


def test_a_ratio_divides_its_metrics_per_key(built: Workspace) -> None:
    same(
        built,
        built.metric("revenue_per_invoice", grain="year").table,
        f"select cast(date_trunc('year', invoice_date) as date),"
        f" sum(revenue)::double / count(distinct invoice_id) from {FACT} group by 1 order by 1",
    )


def test_a_derived_metric_computes_its_expression_over_its_inputs(built: Workspace) -> None:
    same(
        built,
        built.metric("revenue_per_buyer_minus_invoice", by=["country"]).table,
        "select billing_country, sum(revenue) / count(distinct customer_key)"
        f" - sum(revenue)::double / count(distinct invoice_id) from {FACT} group by 1 order by 1",
    )


def test_cumulative_metrics_all_time_grain_to_date_and_window(built: Workspace) -> None:
    buckets = f"select distinct cast(date_trunc('month', invoice_date) as date) as b from {FACT}"
    same(
        built,
        built.metric("revenue_running", grain="month").table,
        f"select b, (select sum(revenue) from {FACT} where invoice_date < b + interval 1 month)"
        f" from ({buckets}) order by 1",
    )
    same(
        built,
        built.metric("revenue_ytd", grain="month").table,
        f"select b, (select sum(revenue) from {FACT} where invoice_date < b + interval 1 month"
        f" and invoice_date >= date_trunc('year', b)) from ({buckets}) order by 1",
    )
    same(
        built,
        built.metric("revenue_last_90_days", grain="month").table,
        f"select b, (select sum(revenue) from {FACT} where invoice_date < b + interval 1 month"
        f" and invoice_date >= b + interval 1 month - interval 90 day) from ({buckets}) order by 1",
    )
    with pytest.raises(BadQuery) as caught:  # a cumulative metric accumulates over metric_time
        built.metric("revenue_ytd", grain="month", by=["metric_time__fortnight"])
    assert caught.value.parameter == "by"


INJECTIONS = [
    "Germany' OR '1'='1",
    "Germany'; DROP TABLE marts.fct_invoice_line; --",
    "') OR 1=1 --",
    'Germany" OR "1"="1',
    "Germany\\' OR 1=1 --",
    "x' UNION SELECT 1e9 --",
    "Germany/**/OR/**/1=1",
    "$$ OR 1=1 $$",
    "Germany\x00' OR 1=1",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_filter_value_that_tries_injection_is_only_a_value(built: Workspace, value: str) -> None:
    total = built.query(f"select sum(revenue) as r from {FACT}").column(0)[0].as_py()
    for where in (f"country:eq:{value}", f"country:in:{value},France", f"country:ne:{value}"):
        try:
            answer = built.metric("revenue", where=[where]).table
        except BadQuery as err:  # refused (a control character): as safe as a value
            assert err.parameter == "where" and "\x00" in value
            continue
        got = answer.column(0)[0].as_py()
        if where.startswith("country:eq"):
            assert got is None  # no country is called that
        elif where.startswith("country:in"):
            france = built.query(f"select sum(revenue) from {FACT} where billing_country = 'France'")
            assert got == france.column(0)[0].as_py()
        else:
            assert got == total
    try:  # a date compared with text that is no date: refused, never run as SQL
        built.metric("revenue", where=[f"metric_time:gte:{value}"])
    except BadQuery as err:
        assert err.parameter == "where"
    assert built.query(f"select count(*) from {FACT}").column(0)[0].as_py() == 2240


def test_unknown_names_are_refused_with_the_parameter_to_fix(built: Workspace) -> None:
    cases = [
        (dict(name="revenu"), "name"),
        (dict(name="revenue", by=["nope"]), "by"),
        (dict(name="revenue", grain="fortnight"), "grain"),
        (dict(name="revenue", where=["country"]), "where"),
        (dict(name="revenue", where=["country:like:%x%"]), "where"),
        (dict(name="revenue", where=["country; drop:eq:x"]), "where"),
    ]
    for kwargs, parameter in cases:
        with pytest.raises(BadQuery) as caught:
            built.metric(**kwargs)  # type: ignore[arg-type]
        assert caught.value.parameter == parameter, kwargs


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_the_sql_renders_for_each_engine(built: Workspace, dialect: str) -> None:
    for name in ("revenue", "revenue_per_invoice", "revenue_per_buyer_minus_invoice", "revenue_ytd"):
        sql = metric_sql(built.project, ask(name, ["country"], "week", ["country:in:DE,FR"]), dialect)
        sqlglot.parse_one(sql, dialect=dialect)  # the engine's own dialect reads it back
        assert "DATE_TRUNC('WEEK'" in sql and FACT in sql


def test_the_cli_lists_queries_and_shows_sql(built: Workspace, cli: Cli) -> None:
    code, out = cli("metrics", "list", "--format", "json", project=built.root)
    assert code == 0
    listed = {m["name"]: m for m in json.loads(out)["metrics"]}
    assert listed["revenue_ytd"]["type"] == "cumulative" and "country" in listed["revenue"]["dimensions"]
    code, out = cli(
        "metrics", "query", "revenue", "--by", "country", "--grain", "year", "--where", "country:in:Germany",
        "--format", "csv", project=built.root,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[:2] == ["metric_time,country,revenue", "2021-01-01,Germany,53.46"]
    code, out = cli("metrics", "query", "revenue", "--sql", "--by", "country", project=built.root)
    assert code == 0 and out.startswith('WITH gm_1 AS (SELECT billing_country AS "country"')
    code, out = cli("metrics", "query", "revenue", "--by", "contry", project=built.root)
    assert code == 1 and '"contry" is no dimension' in out and "Traceback" not in out
