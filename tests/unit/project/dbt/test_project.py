"""dbt projects read as Gristmill projects: Jinja rendering, configs, naming, macros, dbt_utils,
seeds, snapshots and tests, and the errors a user reads. Rendered SQL is run on DuckDB itself, and
tests as checks through a whole run, with dbt's failure counts."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from gristmill.errors import ProjectError
from gristmill.plan import build_graph
from gristmill.project import Project, find_root, load_project
from gristmill.project.specs import CheckSpec
from gristmill.workspace import Workspace
from tests.conftest import Cli, write_files

PROJECT_YML = """
name: shop
profile: shop
vars:
  min_amount: 5
  shop:
    currency: EUR
models:
  shop:
    +materialized: table
    staging:
      +materialized: view
      +tags: [staging]
"""

SEEDS = {
    "seeds/raw_orders.csv": """
        id,customer_id,amount,status,updated_at
        1,10,12.50,paid,2024-01-01 10:00:00
        2,11,3.00,open,2024-01-02 11:00:00
        3,10,null,paid,2024-01-03 12:00:00
    """,
    "seeds/raw_customers.csv": """
        id,name
        10,Ann
        11,Bob
    """,
}


@pytest.fixture(autouse=True)
def _no_personal_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profiles.yml in the home folder must not change what these projects are named."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)


def dbt_project(tmp_path: Path, files: dict[str, str], project_yml: str = PROJECT_YML) -> Path:
    root = tmp_path / "shop"
    root.mkdir(parents=True, exist_ok=True)
    return write_files(root, {"dbt_project.yml": project_yml, **files})


def load(tmp_path: Path, files: dict[str, str], project_yml: str = PROJECT_YML) -> Project:
    """The project, failing as a run of all of it would: a model that does not compile is an error
    once a command selects it."""
    project = load_project(dbt_project(tmp_path, files, project_yml))
    for model in project.models.values():
        if model.error is not None:
            raise model.error
    return project


def run_in_duckdb(project: Project, sql: str) -> list[tuple[object, ...]]:
    """Land the seeds and create every model as a view in an in-memory DuckDB, then query it."""
    con = duckdb.connect()
    for source in project.sources.values():
        for table in source.tables.values():
            schema, name = table.asset.split(".")
            con.execute(f"create schema if not exists {schema}")
            path = project.root / table.options["path"]
            con.execute(
                f"create table {schema}.{name} as select * from read_csv(?, nullstr=['', 'null'])",
                [str(path)],
            )
    pending = dict(project.models)
    while pending:  # create views once what they read exists
        for asset, model in list(pending.items()):
            schema, name = asset.split(".")
            con.execute(f"create schema if not exists {schema}")
            try:
                con.execute(f"create view {schema}.{name} as {model.sql}")
            except duckdb.CatalogException:
                continue
            del pending[asset]
    return con.execute(sql).fetchall()


# --- finding and naming ------------------------------------------------------------------------


def test_a_folder_with_dbt_project_yml_is_a_project_and_gristmill_toml_wins(tmp_path: Path) -> None:
    root = dbt_project(tmp_path, {"models/staging/one.sql": "select 1 as x"})
    assert find_root(root / "models" / "staging") == root
    project = load_project(root)
    assert project.settings.name == "shop"
    assert (
        project.path(project.settings.storage.catalog) == (root / ".gristmill" / "catalog.sqlite").resolve()
    )
    assert list(project.models) == ["main.one"]
    (root / "gristmill.toml").write_text('name = "other"\n')
    assert load_project(root).settings.name == "other"


def test_ref_source_config_and_vars_render_to_asset_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_REGION", "north")
    project = load(
        tmp_path,
        {
            **SEEDS,
            "models/staging/stg_orders.sql": """
                select id as order_id, customer_id, amount,
                  '{{ var("currency") }}' as currency,
                  '{{ env_var("SHOP_REGION") }}' as region,
                  '{{ var("missing", "fallback") }}' as fallback
                from {{ ref('raw_orders') }}
                where coalesce(amount, 0) >= {{ var('min_amount') }} - 5
            """,
            "models/staging/stg_customers.sql": "select * from {{ source('shop', 'customers') }}",
            "models/staging/sources.yml": """
                version: 2
                sources:
                  - name: shop
                    schema: main
                    tables:
                      - {name: customers, identifier: raw_customers}
            """,
            "models/marts/orders.sql": """
                {{ config(tags=['finance']) }}
                select o.*, c.id from {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c
                  on c.id = o.customer_id
            """,
        },
    )
    staging = project.models["main.stg_orders"]
    assert staging.kind == "view" and staging.tags == ("staging",)
    assert "from main.raw_orders" in staging.sql
    assert "'EUR' as currency" in staging.sql and "'north' as region" in staging.sql
    assert "'fallback' as fallback" in staging.sql and ">= 5 - 5" in staging.sql
    assert "from main.raw_customers" in project.models["main.stg_customers"].sql
    orders = project.models["main.orders"]
    assert orders.kind == "table" and orders.tags == ("finance",)
    assert orders.file == "models/marts/orders.sql" and orders.sql_line == 1
    assert orders.path == project.root / "models" / "marts" / "orders.sql"
    assert sorted(project.sources["seeds"].tables) == ["raw_customers", "raw_orders"]
    assert run_in_duckdb(project, "select count(*), min(region) from main.orders") == [(3, "north")]


def test_custom_schemas_aliases_and_the_profile_target(tmp_path: Path) -> None:
    files = {
        "models/marts/fct.sql": "{{ config(schema='marts', alias='fct_orders') }} select 1 as x",
        "models/plain.sql": "select * from {{ ref('fct') }}",
    }
    project = load(tmp_path, files)
    assert sorted(project.models) == ["main.plain", "main_marts.fct_orders"]
    assert "from main_marts.fct_orders" in project.models["main.plain"].sql

    profile = "shop:\n  target: dev\n  outputs:\n    dev: {type: duckdb, schema: analytics}\n"
    project = load(tmp_path, {**files, "profiles.yml": profile})
    assert sorted(project.models) == ["analytics.plain", "analytics_marts.fct_orders"]

    override = """
        {% macro generate_schema_name(custom_schema_name, node) -%}
          {{ custom_schema_name | trim if custom_schema_name else target.schema }}
        {%- endmacro %}
    """
    project = load(tmp_path, {**files, "profiles.yml": profile, "macros/schemas.sql": override})
    assert sorted(project.models) == ["analytics.plain", "marts.fct_orders"]


def test_configs_layer_project_folders_property_files_and_the_model(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            "models/staging/stg_a.sql": "select 1 as id",
            "models/staging/stg_b.sql": "{{ config(materialized='incremental') }} select 1 as id",
            "models/staging/stg_c.sql": "{{ config(enabled=false) }} select 1 as id",
            "models/staging/schema.yml": """
                version: 2
                models:
                  - name: stg_a
                    description: '{{ doc("stg_a") }}'
                    config: {materialized: table, tags: [yml]}
                    columns:
                      - {name: id, description: The key.}
            """,
            "models/docs.md": "{% docs stg_a %}\nOne row.\n{% enddocs %}\n",
        },
    )
    assert sorted(project.models) == ["main.stg_a", "main.stg_b"]
    stg_a = project.models["main.stg_a"]
    assert (stg_a.kind, stg_a.tags, stg_a.description, stg_a.columns) == (
        "table",
        ("staging", "yml"),
        "One row.",
        {"id": "The key."},
    )
    assert project.models["main.stg_b"].kind == "incremental"


# --- incremental, ephemeral, snapshot --------------------------------------------------------------


def test_is_incremental_renders_the_model_both_ways(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            **SEEDS,
            "models/events.sql": """
                {{ config(materialized='incremental', unique_key=['id']) }}
                select * from {{ ref('raw_orders') }}
                {% if is_incremental() %}
                where updated_at > (select max(updated_at) from {{ this }})
                {% endif %}
            """,
            "models/appended.sql": """
                {{ config(materialized='incremental', incremental_strategy='append', unique_key='id') }}
                select * from {{ ref('raw_orders') }}
            """,
        },
    )
    events = project.models["main.events"]
    assert events.kind == "incremental" and events.key == ("id",) and events.strategy == "merge"
    assert "main.events" not in events.sql
    assert events.incremental_sql is not None
    assert "where updated_at > (select max(updated_at) from main.events)" in events.incremental_sql
    appended = project.models["main.appended"]
    assert appended.key == () and appended.strategy == "append"
    assert appended.incremental_sql is None  # it reads the same either way


def test_ephemeral_models_are_inlined_unless_tested(tmp_path: Path) -> None:
    files = {
        **SEEDS,
        "models/paid.sql": """
            {{ config(materialized='ephemeral') }}
            select * from {{ ref('raw_orders') }} -- paid
        """,
        "models/report.sql": "select count(*) as n from {{ ref('paid') }} p where p.status = 'paid'",
    }
    project = load(tmp_path, files)
    assert "main.paid" not in project.models
    assert "from (\nselect * from main.raw_orders -- paid\n) p" in project.models["main.report"].sql
    assert run_in_duckdb(project, "select n from main.report") == [(2,)]

    tested = "version: 2\nmodels:\n  - name: paid\n    columns:\n      - {name: id, tests: [unique]}\n"
    project = load(tmp_path, {**files, "models/schema.yml": tested})
    assert project.models["main.paid"].kind == "view"
    assert "from main.paid p" in project.models["main.report"].sql


def test_snapshot_blocks_become_snapshot_models(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            **SEEDS,
            "snapshots/orders.sql": """
                {% snapshot orders_snapshot %}
                {{ config(target_schema='snapshots', unique_key='id', strategy='timestamp',
                          updated_at='updated_at') }}
                select * from {{ ref('raw_orders') }}
                {% endsnapshot %}

                {% snapshot customers_snapshot %}
                {{ config(unique_key='id', strategy='check', check_cols='all') }}
                select * from {{ ref('raw_customers') }}
                {% endsnapshot %}
            """,
        },
    )
    orders = project.models["snapshots.orders_snapshot"]
    assert (orders.kind, orders.key, orders.time) == ("snapshot", ("id",), "updated_at")
    assert orders.sql.strip() == "select * from main.raw_orders"
    customers = project.models["main.customers_snapshot"]
    assert (customers.kind, customers.key, customers.time) == ("snapshot", ("id",), None)


# --- macros -------------------------------------------------------------------------------------


def test_project_macros_return_dispatch_and_namespace(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            "macros/money.sql": """
                {% macro cents(column) -%}
                  ({{ column }} * 100)::bigint
                {%- endmacro %}

                {% macro statuses() %}{{ return(['paid', 'open']) }}{% endmacro %}

                {% macro label(x) %}{{ return(adapter.dispatch('label')(x)) }}{% endmacro %}
                {% macro default__label(x) %}'{{ x }}-' || {{ shop.cents('1') }}{% endmacro %}
            """,
            "models/m.sql": """
                select {{ cents('2.5') }} as c, {{ label('x') }} as l,
                  {{ statuses() | length }} as n, '{{ statuses() | join(",") }}' as s
            """,
        },
    )
    assert run_in_duckdb(project, "select * from main.m") == [(250, "x-100", 2, "paid,open")]


def test_dbt_utils_and_cross_database_macros_render_sql_duckdb_runs(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            **SEEDS,
            "models/keys.sql": """
                select id,
                  {{ dbt_utils.generate_surrogate_key(['id', 'amount']) }} as key,
                  {{ dbt_utils.surrogate_key(['id', 'amount']) }} as old_key,
                  {{ dbt_utils.safe_add(['amount', '1']) }} as plus,
                  {{ dbt_utils.safe_divide('amount', '0') }} as divided,
                  {{ dbt.datediff("'2024-01-01'", 'updated_at', 'day') }} as days,
                  {{ dateadd('month', 1, 'updated_at') }} as next_month,
                  {{ dbt.date_trunc('month', 'updated_at') }} as month,
                  {{ dbt.last_day('updated_at', 'month') }} as month_end,
                  cast(id as {{ type_string() }}) as id_text,
                  {{ split_part("'a-b-c'", "'-'", 2) }} as part,
                  {{ dbt.hash("'x'") }} as hashed,
                  {{ current_timestamp() }} is not null as has_now
                from {{ ref('raw_orders') }}
            """,
            "models/wide.sql": """
                select {{ dbt_utils.star(ref('raw_orders'), except=['updated_at', 'amount']) }},
                  {{ dbt_utils.pivot('status', ['paid', 'open']) }}
                from {{ ref('raw_orders') }} group by all
            """,
            "models/spine.sql": """
                {{ dbt_utils.date_spine('day', "cast('2024-01-01' as date)", "cast('2024-01-05' as date)") }}
            """,
            "models/unioned.sql": "{{ dbt_utils.union_relations([ref('raw_orders'), ref('raw_customers')])}}",
            "models/unpivoted.sql": "{{ dbt_utils.unpivot(ref('raw_customers'), exclude=['id']) }}",
            "models/latest.sql": "{{ dbt_utils.deduplicate(ref('raw_orders'), 'status', 'updated_at desc')}}",
            "models/staged.sql": "select id as order_id, status from {{ ref('raw_orders') }}",
            "models/star_of_model.sql": "select {{ dbt_utils.star(ref('staged')) }} from {{ ref('staged') }}",
        },
    )
    keys = run_in_duckdb(
        project,
        "select key = md5('1-12.5'), old_key = md5('1-12.5'), plus, divided, days, next_month, month,"
        " month_end, id_text, part, hashed = md5('x'), has_now from main.keys where id = 1",
    )
    assert [tuple(str(v) for v in row) for row in keys] == [
        (
            "True",
            "True",
            "13.5",
            "None",
            "0",
            "2024-02-01 10:00:00",
            "2024-01-01 00:00:00",
            "2024-01-31",
            "1",
            "b",
            "True",
            "True",
        )
    ]
    [(null_key,)] = run_in_duckdb(project, "select key from main.keys where id = 3")
    assert null_key == duckdb.sql("select md5('3-_dbt_utils_surrogate_key_null_')").fetchone()[0]  # type: ignore[index]
    assert run_in_duckdb(project, "select * from main.wide order by id") == [
        (1, 10, "paid", 1, 0),
        (2, 11, "open", 0, 1),
        (3, 10, "paid", 1, 0),
    ]
    assert [str(d) for (d,) in run_in_duckdb(project, "select * from main.spine")] == [
        f"2024-01-0{day} 00:00:00" for day in range(1, 5)
    ]
    assert run_in_duckdb(
        project, "select _dbt_source_relation, count(*), count(name) from main.unioned group by 1 order by 1"
    ) == [
        ('"main"."main"."raw_customers"', 2, 2),
        ('"main"."main"."raw_orders"', 3, 0),
    ]
    assert run_in_duckdb(project, "select * from main.unpivoted order by id") == [
        (10, "name", "Ann"),
        (11, "name", "Bob"),
    ]
    assert run_in_duckdb(project, "select id from main.latest order by id") == [
        (2,)
    ]  # dbt_utils drops the NULL row
    assert "order_id" in project.models["main.star_of_model"].sql


def test_macros_that_query_while_compiling_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as err:
        load(
            tmp_path,
            {
                **SEEDS,
                "models/m.sql": "select\n{{ dbt_utils.get_column_values(ref('raw_orders'), 'status') }}",
            },
        )
    assert str(err.value).startswith("models/m.sql:2: dbt_utils.get_column_values queries the warehouse")
    assert err.value.hint is not None and "var" in err.value.hint


# --- seeds and sources ------------------------------------------------------------------------------


def test_seeds_are_one_files_source_with_dbt_reader_options(tmp_path: Path) -> None:
    seeds = "seeds:\n  shop:\n    raw_orders:\n      +column_types: {amount: 'decimal(10,2)'}\n"
    yml = PROJECT_YML + seeds + "      +schema: raw\n"
    project = load(tmp_path, SEEDS, yml)
    seeds = project.sources["seeds"]
    assert seeds.kind == "files"
    orders = seeds.tables["raw_orders"]
    assert orders.asset == "main_raw.raw_orders"
    assert orders.options["path"] == "seeds/raw_orders.csv"
    assert orders.options["options"]["types"] == {"amount": "decimal(10,2)"}
    assert "null" in orders.options["options"]["nullstr"]
    assert seeds.tables["raw_customers"].asset == "main.raw_customers"


def test_a_source_nothing_lands_names_the_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as err:
        load(
            tmp_path,
            {
                "models/m.sql": "select * from {{ source('shop', 'orders') }}",
                "models/sources.yml": "version: 2\nsources:\n- name: shop\n  tables:\n  - name: orders\n",
            },
        )
    message = str(err.value)
    assert message.startswith('models/sources.yml:5: source("shop", "orders") reads shop.orders')
    assert "used by models/m.sql" in message
    assert "seed" in message and "sources/*.yml" in message


def test_a_gristmill_source_in_the_dbt_folder_lands_what_a_dbt_source_reads(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        {
            "data/orders.csv": "id\n1\n",
            "sources/shop.yml": "kind: files\nschema: raw\ntables:\n  orders: {path: data/orders.csv}\n",
            "models/m.sql": "select * from {{ source('shop', 'orders') }}",
            "models/sources.yml": """
                version: 2
                sources:
                  - name: shop
                    schema: "{{ var('raw_schema', 'raw') }}"
                    tables:
                      - {name: orders, identifier: shop__orders}
            """,
        },
    )
    assert project.sources["shop"].tables["orders"].asset == "raw.shop__orders"
    assert project.models["main.m"].sql == "select * from raw.shop__orders"


# --- tests as checks ------------------------------------------------------------------------------


def checks_of(project: Project) -> dict[tuple[str, str], CheckSpec]:
    return {(c.asset, c.name): c for c in project.checks}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_schema_tests_become_checks_and_the_rest_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schema = """
        version: 2
        models:
          - name: orders
            data_tests:
              - dbt_utils.unique_combination_of_columns:
                  combination_of_columns: [id, customer_id]
            columns:
              - name: id
                data_tests: [unique, not_null]
              - name: status
                tests:
                  - accepted_values:
                      values: [paid, open]
                      config: {severity: warn}
              - name: customer_id
                tests:
                  - relationships: {to: ref('raw_customers'), field: id}
                  - not_null: {config: {where: "status = 'paid'"}}
                  - dbt_expectations.expect_column_values_to_be_between: {min_value: 0}
              - name: amount
                tests:
                  - dbt_utils.accepted_range: {min_value: 0}
        seeds:
          - name: raw_customers
            columns:
              - name: id
                tests: [unique]
    """
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load(
            tmp_path,
            {
                **SEEDS,
                "models/orders.sql": "select * from {{ ref('raw_orders') }}",
                "models/schema.yml": schema,
                "tests/no_negative.sql": "select * from {{ ref('orders') }} where amount < 0",
            },
        )
    checks = checks_of(project)
    assert set(checks) == {
        ("main.orders", "unique(id, customer_id)"),
        ("main.orders", "unique(id)"),
        ("main.orders", "not_null(id)"),
        ("main.orders", "accepted_values(status)"),
        ("main.orders", "relationships(customer_id -> main.raw_customers.id)"),
        ("main.orders", "expression(not_null_orders_customer_id)"),
        ("main.orders", "range(amount >= 0)"),
        ("main.orders", "query(no_negative)"),
        ("main.raw_customers", "unique(id)"),
    }
    assert checks[("main.orders", "accepted_values(status)")].severity == "warn"
    assert checks[("main.orders", "accepted_values(status)")].params == {"values": ["paid", "open"]}
    assert checks[("main.orders", "unique(id)")].location == "models/schema.yml:9"
    restricted = checks[("main.orders", "expression(not_null_orders_customer_id)")]
    assert restricted.params["sql"] == "NOT (status = 'paid') IS TRUE OR NOT (customer_id IS NULL) IS TRUE"
    assert restricted.location == "models/schema.yml:18"
    singular = checks[("main.orders", "query(no_negative)")]
    assert singular.location == "tests/no_negative.sql:1"
    assert singular.params["sql"] == "select * from main.orders where amount < 0"
    assert warnings_of(caplog) == [
        'models/schema.yml:19: test not run: "dbt_expectations.expect_column_values_to_be_between" is '
        "a test of the package dbt_expectations, which is not in dbt_packages/ (run `dbt deps`, or check "
        "packages.yml)"
    ]


def test_dbt_utils_tests_map_to_the_check_that_means_the_same(tmp_path: Path) -> None:
    """A built-in check where one means exactly the test; an expression for a test of single rows
    (it shares the table's scan); dbt_utils' own query of failing rows otherwise."""
    schema = """
        version: 2
        models:
          - name: orders
            tests:
              - dbt_utils.expression_is_true: {expression: "amount >= 0 or status = 'open'"}
              - dbt_utils.equal_rowcount: {compare_model: ref('raw_orders')}
              - dbt_utils.recency: {datepart: month, field: updated_at, interval: 3}
            columns:
              - name: amount
                tests:
                  - dbt_utils.accepted_range: {min_value: 0, max_value: 100, inclusive: false}
                  - dbt_utils.accepted_range: {min_value: "'0'"}
                  - dbt_utils.not_null_proportion: {at_least: 1}
                  - dbt_utils.not_null_proportion: {at_least: 0.95}
              - name: status
                tests:
                  - dbt_utils.not_accepted_values: {values: [void]}
                  - dbt_utils.not_empty_string
                  - dbt_utils.at_least_one
                  - dbt_utils.not_constant
                  - dbt_utils.unique_where: {where: "status = 'paid'"}
                  - dbt_utils.not_null_where: {where: "status = 'paid'"}
              - name: customer_id
                tests:
                  - dbt_utils.relationships_where: {to: ref('raw_customers'), field: id}
                  - dbt_utils.cardinality_equality: {to: ref('raw_customers'), field: id}
                  - dbt_utils.sequential_values: {interval: 1}
    """
    project = load(
        tmp_path,
        {**SEEDS, "models/orders.sql": "select * from {{ ref('raw_orders') }}", "models/schema.yml": schema},
    )
    kinds = {name: c.kind for (_, name), c in checks_of(project).items()}
    assert kinds == {
        "expression(dbt_utils_expression_is_true_orders_amount_0_or_status_open_)": "expression",
        "query(dbt_utils_equal_rowcount_orders_ref_raw_orders_)": "query",
        "query(dbt_utils_recency_orders_month__updated_at__3)": "query",
        "range(amount 0..100 exclusive)": "range",
        "expression(dbt_utils_accepted_range_orders_amount___0_)": "expression",
        "not_null(amount)": "not_null",
        "query(dbt_utils_not_null_proportion_orders_0_95__amount)": "query",
        "expression(dbt_utils_not_accepted_values_orders_status__void)": "expression",
        "expression(dbt_utils_not_empty_string_orders_status)": "expression",
        "query(dbt_utils_at_least_one_orders_status)": "query",
        "query(dbt_utils_not_constant_orders_status)": "query",
        "query(dbt_utils_unique_where_orders_status)": "query",
        "expression(dbt_utils_not_null_where_orders_status)": "expression",
        "query(dbt_utils_relationships_where_orders_customer_id__id__ref_raw_customers_)": "query",
        "query(dbt_utils_cardinality_equality_orders_customer_id__id__ref_raw_customers_)": "query",
        "query(dbt_utils_sequential_values_orders_customer_id__1)": "query",
    }
    by_name = {c.name: c for c in project.checks}
    # dbt fails a row only when the expression is false: NULL passes, as in dbt_utils' `where not(…)`
    expression = by_name["expression(dbt_utils_expression_is_true_orders_amount_0_or_status_open_)"]
    assert expression.params["sql"] == "NOT (NOT (amount >= 0 OR status = 'open')) IS TRUE"
    assert expression.columns == ("amount", "status")
    # month is no fixed duration: recency runs dbt_utils' query, threshold and all
    recency = by_name["query(dbt_utils_recency_orders_month__updated_at__3)"].params["sql"]
    assert "MAX(updated_at) AS most_recent FROM this" in recency
    assert "most_recent < CAST((NOW() + CAST(-3 AS BIGINT) * INTERVAL '1' MONTH) AS TIMESTAMP)" in recency
    equal = by_name["query(dbt_utils_equal_rowcount_orders_ref_raw_orders_)"].params["sql"]
    assert "FROM main.raw_orders GROUP BY id_dbtutils_test_equal_rowcount" in equal


def test_test_configs_keep_their_meaning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    schema = """
        version: 2
        models:
          - name: orders
            columns:
              - name: id
                tests:
                  - unique: {config: {enabled: false}}
                  - not_null: {config: {store_failures: true, limit: 5}}
                  - unique: {config: {severity: warn, error_if: ">10", warn_if: ">2"}}
              - name: amount
                tests:
                  - not_null: {name: amount_filled, config: {error_if: ">10", warn_if: ">2", limit: 50}}
                  - not_null: {config: {fail_calc: "count(distinct status)"}}
                  - not_null: {config: {where: "updated_at > '{{ var('since') }}'"}}
    """
    yml = PROJECT_YML.replace("vars:\n", "vars:\n  since: '2024-01-02'\n")
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load(
            tmp_path,
            {
                **SEEDS,
                "models/orders.sql": "select * from {{ ref('raw_orders') }}",
                "models/schema.yml": schema,
            },
            yml,
        )
    assert warnings_of(caplog) == []  # a disabled test is left out silently
    checks = [(c.name, c.kind, c.severity) for c in project.checks]
    assert checks == [
        ("not_null(id)", "not_null", "error"),  # store_failures and limit change nothing here
        ("query(unique_orders_id)", "query", "warn"),  # severity warn: only warn_if counts
        ("query(amount_filled)", "query", "error"),
        ("query(amount_filled (warn_if >2))", "query", "warn"),
        ("query(not_null_orders_amount)", "query", "error"),
        ("expression(not_null_orders_amount)", "expression", "error"),
    ]
    by_name = {c.name: c for c in project.checks}
    error = by_name["query(amount_filled)"].params["sql"]
    assert error == (
        "WITH dbt_test AS (SELECT * FROM (SELECT * FROM this WHERE amount IS NULL) AS dbt_limited LIMIT 50)"
        " SELECT * FROM dbt_test WHERE (SELECT COUNT(*) FROM dbt_test) > 10"
    )
    warn = by_name["query(amount_filled (warn_if >2))"].params["sql"]
    assert warn.endswith(
        "WHERE NOT COALESCE((SELECT COUNT(*) FROM dbt_test) > 10, FALSE)"
        " AND (SELECT COUNT(*) FROM dbt_test) > 2"
    )
    assert by_name["query(unique_orders_id)"].params["sql"].endswith("(SELECT COUNT(*) FROM dbt_test) > 2")
    assert (
        by_name["query(not_null_orders_amount)"]
        .params["sql"]
        .endswith("(SELECT COUNT(DISTINCT status) FROM dbt_test) <> 0")
    )
    rendered = by_name["expression(not_null_orders_amount)"].params["sql"]
    assert rendered == "NOT (updated_at > '2024-01-02') IS TRUE OR NOT (amount IS NULL) IS TRUE"


def test_singular_tests_render_like_models_and_check_the_first_asset_they_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        **SEEDS,
        "models/staging/stg_orders.sql": "select * from {{ ref('raw_orders') }}",
        "models/marts/paid.sql": "{{ config(schema='marts') }} select * from {{ ref('stg_orders') }}",
        "macros/money.sql": "{% macro cents(column) %}({{ column }} * 100){% endmacro %}",
        "tests/big_orders.sql": """
            {{ config(severity='warn') }}
            select * from {{ ref('stg_orders') }} where {{ cents('amount') }} > {{ var('min_amount') }} * 1000
        """,
        "tests/marts/paid_are_orders.sql": """
            -- stg_orders is read first, but paid is built from it: checked once paid is built
            select * from {{ ref('stg_orders') }} where status = 'paid'
              and id not in (select id from {{ ref('paid') }});
        """,
        "tests/disabled.sql": "{{ config(enabled=false) }} select * from {{ ref('stg_orders') }}",
        "tests/broken.sql": "select *\nfrom {{ ref('stg_order') }}",
        "tests/unlanded.sql": "select * from {{ source('shop', 'refunds') }}",
        "tests/generic/positive.sql": "{% test positive(model, column_name) %} select 1 {% endtest %}",
        "tests/fixtures/input.sql": "select 1 as id",
        "models/sources.yml": "version: 2\nsources:\n  - name: shop\n    tables: [{name: refunds}]\n",
    }
    folder_severity = (
        "data_tests:\n  shop:\n    marts:\n      +severity: \"{{ 'warn' if target.name == 'dev' }}\"\n"
    )
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load(tmp_path, files, PROJECT_YML + folder_severity)
    checks = checks_of(project)
    assert sorted(checks) == [
        ("main.stg_orders", "query(big_orders)"),
        ("main_marts.paid", "query(paid_are_orders)"),
    ]
    big = checks[("main.stg_orders", "query(big_orders)")]
    assert (big.severity, big.location) == ("warn", "tests/big_orders.sql:1")
    assert big.params["sql"] == "select * from main.stg_orders where (amount * 100) > 5 * 1000"
    paid = checks[("main_marts.paid", "query(paid_are_orders)")]
    assert (paid.severity, paid.location) == ("warn", "tests/marts/paid_are_orders.sql:1")
    assert "main_marts.paid" in paid.params["sql"] and "main.stg_orders" in paid.params["sql"]
    assert warnings_of(caplog) == [
        'tests/broken.sql:2: singular test not run: ref("stg_order") names no model, seed or snapshot',
        'tests/unlanded.sql:1: singular test not run: source("shop", "refunds") reads shop.refunds, '
        "which nothing lands",
    ]
    assert "main_marts.paid" in build_graph(project, {}).order  # and the run has no loop


def test_custom_generic_tests_are_rendered_with_their_arguments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        **SEEDS,
        "models/orders.sql": "select * from {{ ref('raw_orders') }}",
        "macros/tests.sql": """
            {% test at_most(model, column_name, most, parent=none) %}
              {{ config(severity='warn') }}
              select * from {{ model }} where {{ column_name }} > {{ most }}
              {% if parent %} and customer_id in (select id from {{ parent }}){% endif %}
            {% endtest %}

            {% macro test_same_customers(model) %}
              select * from {{ model }} where customer_id not in (select id from {{ ref('raw_customers') }})
            {% endmacro %}

            {% test broken(model) %}select {{ nope(model) }}{% endtest %}
        """,
        "models/schema.yml": """
            version: 2
            models:
              - name: orders
                tests:
                  - same_customers
                  - shop.same_customers: {name: again, config: {where: "status = 'paid'"}}
                  - broken
                columns:
                  - name: amount
                    tests:
                      - at_most: {most: 10, parent: ref('raw_customers')}
                      - at_most: {most: "{{ var('min_amount') }}", config: {severity: error}}
        """,
    }
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load(tmp_path, files)
    checks = {c.name: c for c in project.checks}
    assert list(checks) == [
        "query(same_customers_orders_)",
        "query(again)",
        "query(at_most_orders_amount__10__ref_raw_customers_)",
        "query(at_most_orders_amount___var_min_amount_)",
    ]
    parent = checks["query(at_most_orders_amount__10__ref_raw_customers_)"]
    assert parent.severity == "warn"  # the test's own config()
    assert " ".join(parent.params["sql"].split()) == (
        "select * from main.orders where amount > 10 and customer_id in (select id from main.raw_customers)"
    )
    assert checks["query(at_most_orders_amount___var_min_amount_)"].severity == "error"  # the YAML wins
    assert "where amount > 5" in checks["query(at_most_orders_amount___var_min_amount_)"].params["sql"]
    assert (
        "from (SELECT * FROM main.orders WHERE status = 'paid') AS dbt_subquery"
        in checks["query(again)"].params["sql"]
    )
    [warning] = warnings_of(caplog)
    assert warning == (
        "models/schema.yml:7: test not run: broken could not be rendered: macros/tests.sql:11: 'nope' is"
        " undefined"
    )


def test_an_enforced_contract_checks_columns_types_and_constraints(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        **SEEDS,
        "models/orders.sql": """
            {{ config(contract={'enforced': true}) }}
            select * from {{ ref('raw_orders') }}
        """,
        "models/staging/stg_orders.sql": "select id from {{ ref('raw_orders') }}",
        "models/free.sql": "select id from {{ ref('raw_orders') }}",
        "models/schema.yml": """
            version: 2
            models:
              - name: orders
                constraints:
                  - {type: unique, columns: [customer_id, status]}
                  - {type: foreign_key, columns: [customer_id], expression: "main.raw_customers (id)"}
                columns:
                  - name: id
                    data_type: bigint
                    constraints: [{type: primary_key}]
                  - name: customer_id
                    data_type: bigint
                    constraints: [{type: foreign_key, to: ref('raw_customers'), to_columns: [id]}]
                  - name: amount
                    data_type: double
                    constraints: [{type: check, expression: "amount >= 0"}, {type: custom, expression: "x"}]
                  - {name: status}
                  - {name: updated_at, data_type: timestamp}
              - name: stg_orders
                config: {contract: {enforced: true}}
                columns:
                  - {name: id, data_type: bigint, constraints: [{type: not_null}]}
              - name: free
                columns:
                  - {name: id, data_type: bigint, constraints: [{type: not_null}]}
        """,
    }
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load(tmp_path, files)
    checks = [(c.asset, c.name) for c in project.checks]
    assert checks == [
        ("main.orders", "schema(id, customer_id, amount, status, updated_at exactly)"),
        ("main.orders", "not_null(id)"),
        ("main.orders", "unique(id)"),
        ("main.orders", "relationships(customer_id -> main.raw_customers.id)"),
        ("main.orders", "expression(check(amount >= 0))"),
        ("main.orders", "query(unique(customer_id, status))"),
        ("main.orders", "relationships(customer_id -> main.raw_customers.id)"),
        ("main.stg_orders", "schema(id exactly)"),
    ]
    schema = project.checks[0]
    assert schema.params == {
        "expect": {
            "id": "bigint",
            "customer_id": "bigint",
            "amount": "double",
            "status": None,
            "updated_at": "timestamp",
        },
        "exact": True,
    }
    assert schema.location == "models/schema.yml:3"
    assert project.checks[4].params["sql"] == "NOT (amount >= 0) IS FALSE"  # NULL passes a CHECK
    assert warnings_of(caplog) == [
        'models/schema.yml:16: constraint not checked: a "custom" constraint has no equivalent check',
        "models/schema.yml:19: constraints of stg_orders not checked: dbt does not apply constraints to a"
        " view",
    ]


# --- tests as checks, run -------------------------------------------------------------------------

RUN_YML = """
name: shop
profile: shop
models:
  shop:
    +materialized: table
data_tests:
  +severity: warn
"""
RUN_FILES = {
    # id 3: negative amount, blank email, shipped before ordered; id 4 twice (one with no amount);
    # id 4's first row: an unknown customer and a status never accepted; id 6: an amount of zero
    "seeds/raw_orders.csv": """
        id,customer_id,amount,status,email,currency,coupon,ordered_at,shipped_at
        1,10,12.50,paid,a@x.io,EUR,,2024-01-01,2024-01-02
        2,11,3.00,open,b@x.io,EUR,,2024-01-02,
        3,10,-1.00,paid, ,EUR,,2024-01-03,2024-01-02
        4,99,5.00,refunded,d@x.io,EUR,,2024-01-04,2024-01-05
        4,10,,paid,e@x.io,EUR,,2024-01-05,2024-01-06
        6,12,0.00,paid,f@x.io,EUR,,2024-01-06,2024-01-07
    """,
    "seeds/raw_customers.csv": "id,name\n10,Ann\n11,Bob\n12,Cy\n13,Dee\n",
    "models/orders.sql": "select * from {{ ref('raw_orders') }}",
    "models/customers.sql": "select * from {{ ref('raw_customers') }}",
    "models/order_counts.sql": "select customer_id, count(*) as orders from {{ ref('orders') }} group by 1",
    "models/typed.sql": "select id::integer as id, customer_id, amount from {{ ref('orders') }}",
    "macros/generic.sql": """
        {% test is_positive(model, column_name, strict=true) %}
        select * from {{ model }} where {{ column_name }} <{{ '=' if strict }} 0
        {% endtest %}
    """,
    "tests/shipped_before_ordered.sql": "select * from {{ ref('orders') }} where shipped_at < ordered_at",
    "tests/every_customer_counted.sql": """
        select o.* from {{ ref('orders') }} o
        where not exists (select 1 from {{ ref('order_counts') }} c where c.customer_id = o.customer_id)
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: orders
            data_tests:
              - dbt_utils.expression_is_true:
                  {name: shipped_after_ordered, expression: "shipped_at >= ordered_at"}
              - dbt_utils.equal_rowcount: {name: as_many_as_customers, compare_model: ref('customers')}
              - dbt_utils.fewer_rows_than: {name: fewer_than_customers, compare_model: ref('customers')}
              - dbt_utils.recency: {name: ordered_yesterday, datepart: day, field: ordered_at, interval: 1}
              - dbt_utils.recency:
                  name: recent_when_empty
                  datepart: day
                  field: ordered_at
                  interval: 1
                  config: {where: "1 = 0"}
            columns:
              - name: id
                data_tests:
                  - unique
                  - unique: {name: paid_ids_unique, config: {where: "status = 'paid'"}}
                  - dbt_utils.sequential_values: {name: ids_in_sequence}
              - name: amount
                data_tests:
                  - dbt_utils.accepted_range: {min_value: 0}
                  - dbt_utils.accepted_range: {min_value: 0, inclusive: false}
                  - dbt_utils.accepted_range:
                      name: positive_for_ann
                      min_value: 0
                      inclusive: false
                      config: {where: "customer_id = 10"}
                  - dbt_utils.expression_is_true: {name: not_negative, expression: ">= 0"}
                  - dbt_utils.not_null_proportion: {name: mostly_filled, at_least: 0.9}
                  - dbt_utils.not_null_proportion: {name: often_filled, at_least: 0.8}
                  - not_null: {name: paid_have_amount, config: {where: "status = 'paid'"}}
                  - not_null: {name: open_have_amount, config: {where: "status = 'open'"}}
                  - not_null: {name: amount_filled, config: {severity: error, error_if: ">1"}}
                  - is_positive: {name: strictly_positive}
                  - is_positive: {name: positive_or_zero, strict: false}
              - name: email
                data_tests:
                  - dbt_utils.not_empty_string: {name: email_filled}
                  - dbt_utils.at_least_one: {name: some_email}
              - name: coupon
                data_tests:
                  - dbt_utils.at_least_one: {name: some_coupon}
              - name: status
                data_tests:
                  - dbt_utils.not_accepted_values: {name: never_refunded, values: [refunded]}
                  - dbt_utils.not_constant: {name: status_varies}
              - name: currency
                data_tests:
                  - dbt_utils.not_constant: {name: currency_varies}
              - name: customer_id
                data_tests:
                  - relationships: {to: ref('customers'), field: id}
                  - dbt_utils.relationships_where:
                      name: known_unless_refunded
                      to: ref('customers')
                      field: id
                      from_condition: "status <> 'refunded'"
                  - dbt_utils.cardinality_equality: {name: same_customers, to: ref('customers'), field: id}
                  - unique: {name: one_repeated_customer, config: {warn_if: ">1"}}
                  - unique:
                      name: repeated_rows
                      config: {fail_calc: "sum(n_records)", warn_if: ">2"}
          - name: order_counts
            columns:
              - name: orders
                data_tests:
                  - accepted_values:
                      name: one_order_each
                      values: [1]
                      config: {severity: error, error_if: ">= 1", warn_if: ">= 0"}
          - name: typed
            config:
              contract: {enforced: true}
            columns:
              - name: id
                data_type: integer
                constraints: [{type: primary_key}]
              - name: customer_id
                data_type: integer
                constraints:
                  - {type: foreign_key, to: ref('customers'), to_columns: [id]}
              - name: amount
                data_type: double
                constraints: [{type: check, expression: "amount >= 0"}]
    """,
}


def test_mapped_tests_count_the_failures_dbt_counts(tmp_path: Path) -> None:
    """Each planted violation fails exactly the tests dbt fails, with dbt's failure count."""
    result = Workspace(dbt_project(tmp_path, RUN_FILES, RUN_YML)).run()
    steps = {s.asset: s for s in result.steps}
    failures = {(s.asset, c.check.name): c.failures for s in result.steps for c in s.checks}
    assert {name: n for (asset, name), n in failures.items() if asset == "main.orders"} == {
        "expression(shipped_after_ordered)": 1,  # id 3; id 2, not shipped (NULL), passes as in dbt
        "query(as_many_as_customers)": 2,  # 6 orders, 4 customers: dbt counts the difference
        "query(fewer_than_customers)": 2,
        "query(ordered_yesterday)": 1,
        "query(recent_when_empty)": 0,  # no rows: dbt_utils.recency passes
        "unique(id)": 1,
        "query(paid_ids_unique)": 0,  # the other id 4 is refunded
        "query(ids_in_sequence)": 2,  # 4 after 4, 6 after 4
        "range(amount >= 0)": 1,
        "range(amount > 0)": 2,  # and the zero, with inclusive: false
        "expression(positive_for_ann)": 1,  # only customer 10's rows: -1 (NULL passes)
        "expression(not_negative)": 1,
        "query(mostly_filled)": 1,  # 5 of 6 filled
        "query(often_filled)": 0,
        "expression(paid_have_amount)": 1,
        "expression(open_have_amount)": 0,
        "query(amount_filled)": 0,  # one NULL: not above error_if
        "query(amount_filled (warn_if != 0))": 1,  # so dbt warns
        "query(strictly_positive)": 2,
        "query(positive_or_zero)": 1,
        "expression(email_filled)": 1,  # a single space
        "query(some_email)": 0,
        "query(some_coupon)": 1,
        "expression(never_refunded)": 1,
        "query(status_varies)": 0,
        "query(currency_varies)": 1,
        "relationships(customer_id -> main.customers.id)": 1,
        "query(known_unless_refunded)": 0,
        "query(same_customers)": 4,  # (10, 3 orders), 99 against (10, 1 customer), 13
        "query(one_repeated_customer)": 0,  # dbt counts repeated values: one, not above 1
        "query(repeated_rows)": 1,  # 3 rows share it, above 2: dbt warns about that one value
        "query(shipped_before_ordered)": 1,
    }
    assert steps["main.orders"].status == "success"  # every failing test there warns
    # read after order_counts is built from orders, so checked with order_counts
    assert failures[("main.order_counts", "query(every_customer_counted)")] == 0
    # customer 10 has 3 orders: 1 failure meets error_if ">= 1", so dbt fails and does not warn
    assert failures[("main.order_counts", "query(one_order_each)")] == 1
    assert failures[("main.order_counts", "query(one_order_each (warn_if >= 0))")] == 0
    assert steps["main.order_counts"].status == "failed"
    assert {name: n for (asset, name), n in failures.items() if asset == "main.typed"} == {
        "schema(id, customer_id, amount exactly)": 1,  # customer_id is BIGINT, not integer
        "not_null(id)": 0,
        "unique(id)": 1,
        "relationships(customer_id -> main.customers.id)": 1,
        "expression(check(amount >= 0))": 1,
    }
    assert steps["main.typed"].status == "failed"
    assert result.summary()["failed"] == 2


def test_a_where_config_changes_which_rows_fail(tmp_path: Path) -> None:
    """The same test with and without ``where``: dbt tests only the rows the clause keeps."""
    schema = """
        version: 2
        models:
          - name: orders
            columns:
              - name: amount
                data_tests:
                  - not_null: {name: all_filled}
                  - not_null: {name: paid_filled, config: {where: "status = 'paid'"}}
                  - not_null: {name: open_filled, config: {where: "status = 'open'"}}
              - name: customer_id
                data_tests:
                  - unique: {name: one_order_per_customer}
                  - unique: {name: one_open_order_per_customer, config: {where: "status = 'open'"}}
                  - relationships: {name: known, to: ref('raw_customers'), field: id}
                  - relationships:
                      name: known_when_open
                      to: ref('raw_customers')
                      field: id
                      config: {where: "status = 'open'"}
    """
    orders = "id,customer_id,amount,status\n1,10,,paid\n2,10,3,open\n3,12,,paid\n4,12,1,paid\n"
    files = {
        "seeds/raw_orders.csv": orders,
        "seeds/raw_customers.csv": "id\n10\n11\n",
        "models/orders.sql": "select * from {{ ref('raw_orders') }}",
        "models/schema.yml": schema,
    }
    result = Workspace(dbt_project(tmp_path, files, RUN_YML)).run()
    failures = {c.check.name: c.failures for s in result.steps for c in s.checks}
    assert failures == {
        "not_null(amount)": 2,
        "expression(paid_filled)": 2,
        "expression(open_filled)": 0,
        "unique(customer_id)": 2,
        "query(one_open_order_per_customer)": 0,
        "relationships(customer_id -> main.raw_customers.id)": 2,
        "query(known_when_open)": 0,
    }


# --- errors ---------------------------------------------------------------------------------------


def test_an_unknown_ref_names_the_file_and_line_and_the_closest_model(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as err:
        load(
            tmp_path,
            {
                "models/stg_orders.sql": "select 1 as x",
                "models/m.sql": "select *\nfrom {{ ref('stg_order') }}",
            },
        )
    assert str(err.value).startswith('models/m.sql:2: ref("stg_order") names no model, seed or snapshot')
    assert err.value.hint == 'did you mean "stg_orders"?'


def test_a_jinja_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as err:
        load(tmp_path, {"models/m.sql": "select 1\n{% if true %}\nselect 2\n"})
    assert str(err.value).startswith("models/m.sql:2: Jinja syntax error: Unexpected end of template")
    assert "Traceback" not in str(err.value)
    with pytest.raises(ProjectError) as err:
        load(
            tmp_path,
            {"models/m.sql": "select 1", "macros/m.sql": "\n{% macro m() %}\n  {{ x }\n{% endmacro %}"},
        )
    assert str(err.value).startswith("macros/m.sql:2: Jinja syntax error")


def test_errors_inside_a_macro_name_the_model_and_the_macro(tmp_path: Path) -> None:
    files = {
        "macros/boom.sql": "{% macro boom(x) %}\n  {{ x.y.z }}\n{% endmacro %}",
        "models/m.sql": "select 1 as a,\n  {{ boom(1) }}",
    }
    with pytest.raises(ProjectError) as err:
        load(tmp_path, files)
    assert str(err.value) == "models/m.sql:2: 'int object' has no attribute 'y' (in macros/boom.sql:2)"
    with pytest.raises(ProjectError) as err:
        load(tmp_path, {"models/m.sql": "select {{ boon(1) }}", "macros/boom.sql": files["macros/boom.sql"]})
    assert str(err.value).startswith("models/m.sql:1: 'boon' is undefined")
    assert err.value.hint == 'did you mean "boom"?'
    with pytest.raises(ProjectError) as err:
        load(tmp_path, {"models/m.sql": "select\n{{ var('nope') }}"})
    assert str(err.value).startswith('models/m.sql:2: var "nope" is not set')
    assert err.value.hint is not None and "dbt_project.yml" in err.value.hint


def test_what_cannot_run_says_so_at_load(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as err:
        load(tmp_path / "python", {"models/m.py": "def model(dbt, session): ..."})
    assert str(err.value).startswith("models/m.py: dbt Python models are not supported")
    with pytest.raises(ProjectError) as err:
        load(
            tmp_path / "sql", {"models/m.sql": "{{ config(materialized='materialized_view') }} select 1 as x"}
        )
    assert 'materialized "materialized_view" is not supported' in str(err.value)


# --- through the CLI ------------------------------------------------------------------------------


def test_a_dbt_project_runs_through_the_cli(tmp_path: Path, cli: Cli) -> None:
    root = dbt_project(
        tmp_path,
        {
            **SEEDS,
            "models/staging/stg_orders.sql": "select id, customer_id, amount from {{ ref('raw_orders') }}",
            "models/marts/revenue.sql": """
                {{ config(schema='marts') }}
                select customer_id, {{ dbt_utils.safe_add(['sum(amount)', '0']) }} as revenue
                from {{ ref('stg_orders') }} group by all
            """,
            "models/marts/schema.yml": """
                version: 2
                models:
                  - name: revenue
                    columns:
                      - name: customer_id
                        tests: [unique, not_null]
            """,
        },
    )
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "2/2 checks passed" in out
    code, out = cli("query", "select * from main_marts.revenue order by 1", "--format", "csv", project=root)
    assert code == 0, out
    assert out.splitlines() == ["customer_id,revenue", "10,12.5", "11,3.0"]
