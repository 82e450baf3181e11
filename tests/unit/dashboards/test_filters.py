"""Page filters are bound, never pasted: ``{{ filters.NAME }}`` becomes a ``$n`` parameter the SQL
guard binds as a literal, and a metric block's filter a structured condition. An injection
corpus in the values, run for real on DuckDB: 0 successes."""

from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from gristmill.dashboards.reading import bind_sql, filter_values, metric_query
from gristmill.errors import BadQuery
from gristmill.project.dashboard_specs import MetricBlock, parse_dashboard
from gristmill.project.metric_filters import Filter
from gristmill.sql.guard import guard_select

INJECTIONS = [
    "DE' OR '1'='1",
    "DE'; DROP TABLE marts.sales; --",
    "') OR 1=1 --",
    'DE" OR "1"="1',
    "DE\\' OR 1=1 --",
    "x' UNION SELECT secret, 1 FROM marts.secrets --",
    "DE/**/OR/**/1=1",
    "$$ OR 1=1 $$",
    "$1",
    "{{ filters.country }}",
    "'; ATTACH '/tmp/evil.db' AS evil; --",
    "DE' AND (SELECT getenv('HOME')) IS NOT NULL --",
    "\U0001d507\U0001d508' OR 1=1 --",  # letters outside the BMP
]
SQL = """
select country, sum(amount) as amount from marts.sales
where {{ filters.country }} is null or country = {{ filters.country }}
group by 1
"""
PAGE = f"""---
filters: [{{name: country, type: select}}, {{name: since, type: text, default: "2024-01-01"}}]
---
```sql name=a
{SQL}
```
"""


@pytest.fixture
def db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.sales as select * from (values ('DE', 10), ('FR', 20)) t(country, amount)"
    )
    con.execute("create table marts.secrets as select 'hunter2' as secret")
    return con


def run(db: duckdb.DuckDBPyConnection, value: str | None) -> list[tuple[object, ...]]:
    sql, params = bind_sql(SQL, {"country": value})
    query = guard_select(sql, ["marts.sales"], params=params)
    return db.execute(query.sql("duckdb")).fetchall()


def test_placeholders_become_parameters_in_order() -> None:
    sql, params = bind_sql(SQL, {"country": "DE"})
    assert "{{" not in sql and sql.count("$1") == 1 and sql.count("$2") == 1
    assert params == ["DE", "DE"]


def test_a_value_filters_and_an_unset_filter_is_null(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "DE") == [("DE", 10)]
    assert sorted(run(db, None)) == [("DE", 10), ("FR", 20)]


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_injection_in_a_filter_value_is_only_a_value(db: duckdb.DuckDBPyConnection, value: str) -> None:
    assert run(db, value) == []  # no country is called that
    sql, params = bind_sql(SQL, {"country": value})
    bound = guard_select(sql, ["marts.sales"], params=params)
    literals = [lit.this for lit in bound.find_all(exp.Literal) if lit.is_string]
    assert literals == [value, value]  # the value, whole, as two string literals: nothing else
    assert db.execute("select count(*) from marts.sales").fetchone() == (2,)
    assert db.execute("select count(*) from marts.secrets").fetchone() == (1,)


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_metric_filter_value_stays_a_condition_value(value: str) -> None:
    block = MetricBlock("m", "revenue", (), None, ("country:eq:{{ filters.country }}", "country:ne:XX"), 1)
    query = metric_query(block, {"country": value})
    assert query.where == (Filter("country", "eq", (value,)), Filter("country", "ne", ("XX",)))
    assert metric_query(block, {"country": None}).where == (Filter("country", "ne", ("XX",)),)


def test_values_come_from_the_query_string_else_defaults_and_control_characters_are_refused() -> None:
    page = parse_dashboard(PAGE, "dashboards/x.md", "x")
    assert filter_values(page, {"country": "DE", "other": "ignored"}) == {
        "country": "DE",
        "since": "2024-01-01",
    }
    assert filter_values(page, {"country": "", "since": ""}) == {"country": None, "since": None}
    with pytest.raises(BadQuery):
        filter_values(page, {"country": "DE\x00"})
