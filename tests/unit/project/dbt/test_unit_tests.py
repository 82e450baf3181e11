"""dbt unit tests (``unit_tests:``, dbt 1.8+) run under ``gristmill test``: dict, csv and sql rows,
fixture files, ``this`` for incremental models, and overrides of macros, vars and env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.project import load_project
from gristmill.workspace import Workspace
from tests.conftest import Cli, write_files

FILES = {
    "dbt_project.yml": """
        name: shop
        vars:
          fee_rate: 1
        models:
          shop:
            +materialized: table
    """,
    "seeds/raw_orders.csv": "id,customer_id,amount,ordered_at\n1,10,10.0,2024-01-01\n",
    "seeds/raw_customers.csv": "id,name\n10,Ann\n",
    "macros/run_time.sql": "{% macro run_time() %}current_timestamp{% endmacro %}",
    "models/customer_totals.sql": """
        select c.id as customer_id, c.name, count(o.id) as orders, coalesce(sum(o.amount), 0) as total
        from {{ ref('raw_customers') }} as c
        left join {{ ref('raw_orders') }} as o on o.customer_id = c.id
        group by all
    """,
    "models/fees.sql": """
        select id, amount * {{ var('fee_rate') }} as fee, '{{ env_var('REGION', 'eu') }}' as region,
            {{ run_time() }} as computed_at
        from {{ ref('raw_orders') }}
    """,
    "models/orders_inc.sql": """
        {{ config(materialized='incremental', unique_key='id') }}
        select id, amount from {{ ref('raw_orders') }}
        {% if is_incremental() %}
        where id > (select max(id) from {{ this }})
        {% endif %}
    """,
    "tests/fixtures/customers_fixture.csv": "id,name\n10,Ann\n11,Bob\n",
    "models/unit_tests.yml": """
        unit_tests:
          - name: totals_count_and_sum
            description: a customer without orders has zero
            model: customer_totals
            given:
              - input: ref('raw_customers')
                rows:
                  - {id: 10, name: Ann}
                  - {id: 11, name: Bob}
              - input: ref('raw_orders')
                rows:
                  - {id: 1, customer_id: 10, amount: 5.0}
                  - {id: 2, customer_id: 10, amount: 7.5}
            expect:
              rows:
                - {customer_id: 10, orders: 2, total: 12.5}
                - {customer_id: 11, orders: 0, total: 0}
          - name: csv_sql_and_fixture_formats
            model: customer_totals
            given:
              - input: ref('raw_customers')
                format: csv
                fixture: customers_fixture
              - input: ref('raw_orders')
                format: sql
                rows: |
                  select 1 as id, 11 as customer_id, 3.0 as amount
            expect:
              format: csv
              rows: |
                name,orders
                Ann,0
                Bob,1
          - name: incremental_reads_this
            model: orders_inc
            overrides:
              macros:
                is_incremental: true
            given:
              - input: ref('raw_orders')
                rows: [{id: 1, amount: 1.0}, {id: 2, amount: 2.0}, {id: 3, amount: 3.0}]
              - input: this
                rows: [{id: 1, amount: 1.0}]
            expect:
              rows: [{id: 2}, {id: 3}]
          - name: overrides_of_macros_vars_and_env_vars
            model: fees
            overrides:
              macros:
                run_time: "timestamp '2024-05-01 00:00:00'"
              vars:
                fee_rate: 3
              env_vars:
                REGION: us
            given:
              - input: ref('raw_orders')
                rows: [{id: 1, amount: 2}]
            expect:
              rows: [{id: 1, fee: 6, region: us, computed_at: "2024-05-01 00:00:00"}]
          - name: a_wrong_expectation
            model: fees
            given:
              - input: ref('raw_orders')
                rows: [{id: 1, amount: 2}]
            expect:
              rows: [{id: 1, fee: 5}]
    """,
}


@pytest.fixture(autouse=True)
def _no_personal_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.delenv("REGION", raising=False)


def test_dbt_unit_tests_run_with_their_formats_and_overrides(tmp_path: Path) -> None:
    root = write_files(tmp_path / "shop", FILES)
    project = load_project(root)
    assert [t.name for t in project.unit_tests] == [
        "totals_count_and_sum",
        "csv_sql_and_fixture_formats",
        "incremental_reads_this",
        "overrides_of_macros_vars_and_env_vars",
        "a_wrong_expectation",
    ]
    assert project.unit_tests[0].location == "models/unit_tests.yml:2"
    result = Workspace(root).test()
    status = {r.name: (r.status, r.message) for r in result.results}
    assert {n: s for n, (s, _) in status.items()} == {
        "totals_count_and_sum": "passed",
        "csv_sql_and_fixture_formats": "passed",
        "incremental_reads_this": "passed",
        "overrides_of_macros_vars_and_env_vars": "passed",
        "a_wrong_expectation": "failed",
    }, status
    incremental = next(r for r in result.results if r.name == "incremental_reads_this")
    assert incremental.rendering == "incremental"


def test_gristmill_test_runs_dbt_unit_tests_on_the_cli(tmp_path: Path, cli: Cli) -> None:
    root = write_files(tmp_path / "shop", FILES)
    code, output = cli("test", "totals_count_and_sum", "a_wrong_expectation", project=root)
    assert code == 1
    assert "totals_count_and_sum" in output and "a_wrong_expectation" in output
    assert "1 passed" in output and "1 failed" in output


def test_a_unit_test_of_an_unknown_model_names_the_line(tmp_path: Path) -> None:
    files = dict(FILES)
    files["models/unit_tests.yml"] = """
        unit_tests:
          - name: wrong
            model: customer_total
            given: []
            expect: {rows: []}
    """
    with pytest.raises(ConfigError) as err:
        load_project(write_files(tmp_path / "shop", files))
    assert str(err.value).startswith('models/unit_tests.yml:3: unit test "wrong": no model "customer_total"')
    assert err.value.hint == 'did you mean "customer_totals"?'


def test_inputs_get_every_column_typed_as_dbt_gives_them(tmp_path: Path) -> None:
    files = {
        "dbt_project.yml": FILES["dbt_project.yml"],
        "seeds/raw_orders.csv": FILES["seeds/raw_orders.csv"],
        "models/stg_orders.sql": "select id, customer_id, amount, ordered_at from {{ ref('raw_orders') }}",
        "models/days.sql": """
            select id, date_trunc('month', ordered_at) as month, coalesce(amount, 0) as amount
            from {{ ref('stg_orders') }}
        """,
        "models/unit_tests.yml": """
            unit_tests:
              - name: text_is_cast_and_missing_columns_are_null
                model: days
                given:
                  - input: ref('stg_orders')
                    rows: [{id: 1, ordered_at: "2024-03-17"}]
                expect:
                  rows: [{id: 1, month: "2024-03-01", amount: 0}]
              - name: csv_rows_are_widened_too
                model: days
                given:
                  - input: ref('stg_orders')
                    format: csv
                    rows: |
                      id,amount,ordered_at
                      2,5,2024-04-30 23:00:00
                expect:
                  rows: [{id: 2, month: "2024-04-01", amount: 5}]
        """,
    }
    root = write_files(tmp_path / "shop", files)
    result = Workspace(root).test()
    assert [(r.status, r.message) for r in result.results] == [("passed", ""), ("passed", "")]


def test_a_unit_test_of_a_model_that_does_not_compile_is_an_error_the_others_run(tmp_path: Path) -> None:
    files = dict(FILES)
    files["models/fees.sql"] = "select {{ no_such_macro() }} as x"
    result = Workspace(write_files(tmp_path / "shop", files)).test()
    status = {r.name: r.status for r in result.results}
    assert status["totals_count_and_sum"] == "passed"
    assert status["a_wrong_expectation"] == "error"
    broken = next(r for r in result.results if r.name == "a_wrong_expectation")
    assert broken.message.startswith("models/fees.sql:1: 'no_such_macro' is undefined")
    assert not result.ok
