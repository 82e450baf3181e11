"""dbt projects read as Gristmill projects: Jinja rendering, configs, naming, macros, dbt_utils,
seeds, snapshots and tests, and the errors a user reads. Rendered SQL is run on DuckDB itself."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from gristmill.errors import ProjectError
from gristmill.project import Project, find_root, load_project
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
    return load_project(dbt_project(tmp_path, files, project_yml))


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
    checks = {(c.asset, c.name): c for c in project.checks}
    assert set(checks) == {
        ("main.orders", "unique(id, customer_id)"),
        ("main.orders", "unique(id)"),
        ("main.orders", "not_null(id)"),
        ("main.orders", "accepted_values(status)"),
        ("main.orders", "relationships(customer_id -> main.raw_customers.id)"),
        ("main.raw_customers", "unique(id)"),
    }
    assert checks[("main.orders", "accepted_values(status)")].severity == "warn"
    assert checks[("main.orders", "accepted_values(status)")].params == {"values": ["paid", "open"]}
    assert checks[("main.orders", "unique(id)")].location == "models/schema.yml:9"
    warnings = [r.getMessage() for r in caplog.records]
    assert any(
        w.startswith("models/schema.yml:18: test not run: not_null: the where config") for w in warnings
    )
    assert any(
        w.startswith('models/schema.yml:21: test not run: "dbt_utils.accepted_range"') for w in warnings
    )
    assert any(w.startswith("tests/no_negative.sql: singular test not run") for w in warnings)


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
