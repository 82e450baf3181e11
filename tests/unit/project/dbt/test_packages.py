"""dbt packages installed in dbt_packages/: their macros and generic tests load, dispatch searches
as dbt does, a package that is missing is named, and a model that cannot compile can be excluded.

The packages in tests/unit/project/dbt/fixtures/multi_package are written for these tests in the shape
of dbt_date, dbt_expectations, audit_helper and codegen (dispatched default__/duckdb__ macros,
package vars, a ``{% test %}`` block, statement/load_result, run_query)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from gristmill.engines.registry import compile_probe
from gristmill.errors import ProjectError
from gristmill.project import Project, load_project
from gristmill.workspace import Workspace
from tests.conftest import Cli, write_files

FIXTURE = Path(__file__).parent / "fixtures" / "multi_package"


@pytest.fixture(autouse=True)
def _no_personal_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)


def load(root: Path) -> Project:
    """The project as the CLI loads it: compiling asks the engine (DuckDB here) what it computes."""
    return load_project(root, probe=compile_probe)


def copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "multi_package"
    shutil.copytree(FIXTURE, root)
    return root


def test_package_macros_dispatch_and_vars_render_sql_duckdb_runs(tmp_path: Path) -> None:
    project = load(copy_fixture(tmp_path))
    assert {a for a, m in project.models.items() if m.error is None} == {
        "main.metricflow_time_spine",
        "main.daily_orders",
        "main.row_counts",
    }
    spine = project.models["main.metricflow_time_spine"].sql
    # dispatch: config puts the project first, so its duckdb__day_name wins over dbt_date's default
    assert "upper(strftime(date_day, '%a'))" in spine
    # a bare call inside a package macro finds the package's own macro
    assert "isodow(date_day) in (6, 7)" in spine
    # statement()/load_result() sized the series on DuckDB while compiling: 7 days
    assert "range(0, 7)" in spine
    con = duckdb.connect()
    rows = con.execute(f"with spine as ({spine}) select * from spine order by 1").fetchall()
    assert len(rows) == 7
    assert [r[1] for r in rows[:2]] == ["MON", "TUE"]
    assert [r[2] for r in rows[5:]] == [True, True]
    # the root project's var overrides the package's own default
    assert "'Europe/Amsterdam' as time_zone" in project.models["main.daily_orders"].sql


def test_a_constant_query_loaded_without_a_probe_is_an_error_of_its_model(tmp_path: Path) -> None:
    spine = load_project(copy_fixture(tmp_path)).models["main.metricflow_time_spine"]
    assert spine.error is not None
    assert "statement() failed while compiling: no engine to ask" in str(spine.error)
    assert "dbt_packages/dbt_date/macros/base_dates.sql:18" in str(spine.error)


def test_generic_tests_of_packages_become_checks(tmp_path: Path) -> None:
    project = load(copy_fixture(tmp_path))
    checks = {(c.asset, c.params.get("name")): c for c in project.checks}
    between = checks[
        ("main.daily_orders", "dbt_expectations_expect_column_values_to_be_between_daily_orders_orders__1__0")
    ]
    assert between.kind == "query"
    assert between.severity == "error"
    assert between.location == "models/schema.yml:7"
    assert "orders >= 0" in between.params["sql"] and "orders <= 1" in between.params["sql"]
    # a bare test name is found in the installed packages, as dbt finds it
    bare = checks[("main.daily_orders", "expect_column_values_to_be_between_daily_orders_amount__0")]
    assert bare.severity == "warn"


def test_a_project_with_packages_runs_and_its_package_test_fails_where_dbt_would(
    tmp_path: Path, cli: Cli
) -> None:
    root = copy_fixture(tmp_path)
    code, output = cli("run", project=root)
    assert code == 1, output  # 2024-01-03 has two orders: expect ... between 0 and 1 fails
    assert "dbt_expectations_expect_column_values_to_be_between_daily_orders_orders__1__0" in output
    workspace = Workspace(root)
    spine = workspace.query("select count(*) as n from main.metricflow_time_spine", "prod")
    assert spine.column("n").to_pylist() == [7]


def test_an_undefined_package_names_the_package_and_dbt_deps(tmp_path: Path, cli: Cli) -> None:
    root = write_files(
        tmp_path / "shop",
        {
            "dbt_project.yml": "name: shop\n",
            "packages.yml": "packages:\n  - package: calogica/dbt_date\n    version: 0.10.1\n",
            "models/metricflow_time_spine.sql": """
                -- the spine
                with days as (
                    {{ dbt_date.get_base_dates(n_dateparts=30, datepart="day") }}
                )
                select * from days
            """,
            "models/ok.sql": "select 1 as x",
        },
    )
    code, output = cli("run", project=root)
    assert code == 2
    assert "models/metricflow_time_spine.sql:3: 'dbt_date' is undefined: it is the dbt_date package" in output
    assert "not in dbt_packages/" in output
    assert "packages.yml lists calogica/dbt_date: run `dbt deps`" in output
    assert 'did you mean "date"' not in output
    # -x leaves the model out without compiling it: the rest runs
    code, output = cli("run", "-x", "metricflow_time_spine", project=root)
    assert code == 0, output
    assert "main.ok" in output
    (root / "packages.yml").unlink()
    code, output = cli("plan", project=root)
    assert code == 2 and "add godatadriven/dbt_date to packages.yml and run `dbt deps`" in output
    # a package the hub list does not know, named in packages.yml by its git URL
    (root / "packages.yml").write_text("packages:\n  - git: https://github.com/acme/dbt-acme-utils.git\n")
    (root / "models" / "ok.sql").write_text("select {{ acme_utils.one() }} as x")
    code, output = cli("plan", "-x", "metricflow_time_spine", project=root)
    assert code == 2
    assert (
        "models/ok.sql:1: 'acme_utils' is undefined: it is the package "
        "https://github.com/acme/dbt-acme-utils.git, which is not in dbt_packages/"
    ) in output.replace("\n", " ")


def test_a_broken_model_fails_only_commands_that_select_it(tmp_path: Path, cli: Cli) -> None:
    root = write_files(
        tmp_path / "shop",
        {
            "dbt_project.yml": "name: shop\n",
            "models/broken.sql": "select 1\n{% if true %}\nselect 2\n",
            "models/fine.sql": "select 1 as x",
        },
    )
    code, output = cli("run", project=root)
    assert code == 2 and "models/broken.sql:2: Jinja syntax error" in output
    code, output = cli("run", "--exclude", "broken", project=root)
    assert code == 0, output
    code, output = cli("run", "-s", "fine", project=root)
    assert code == 0, output
    code, output = cli("ls", project=root)  # listing compiles nothing
    assert code == 0 and "main.broken" in output and "main.fine" in output


def test_dispatch_without_config_searches_the_project_then_the_package(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    project_yml = (root / "dbt_project.yml").read_text()
    (root / "dbt_project.yml").write_text(
        project_yml.split("dispatch:")[0] + "models:\n  shop:\n    +materialized: table\n"
    )
    (root / "macros" / "day_name.sql").write_text(
        "{% macro default__day_name(date, short) %}lower(dayname({{ date }})){% endmacro %}\n"
    )
    project = load(root)
    assert "lower(dayname(date_day))" in project.models["main.metricflow_time_spine"].sql


def test_compile_time_queries_that_read_a_table_are_refused(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    (root / "models" / "tables.sql").write_text(
        "select '{{ codegen.get_tables_in_schema('main') | join(',') }}' as names\n"
    )
    project = load(root)
    error = project.models["main.tables"].error
    assert isinstance(error, ProjectError)
    assert error.message.startswith(
        "models/tables.sql:1: run_query() reads information_schema.tables from the warehouse while compiling"
    )
    assert "(in dbt_packages/codegen/macros/generate_source.sql:2)" in error.message


def test_macros_see_jinja_globals_and_a_broken_package_macro_fails_only_its_caller(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    write_files(
        root,
        {
            "macros/numbers.sql": (
                "{% macro numbers(n) %}{% for i in range(n) %}{{ i }}{% endfor %}{% endmacro %}"
            ),
            "models/numbers.sql": "select '{{ numbers(3) }}' as digits",
            "dbt_packages/codegen/macros/broken.sql": "\n{% macro broken() %}\n{{ oops }\n{% endmacro %}\n",
            "models/calls_broken.sql": "select {{ codegen.broken() }} as x",
        },
    )
    project = load(root)
    assert project.models["main.numbers"].sql == "select '012' as digits"
    assert project.models["main.metricflow_time_spine"].error is None
    error = project.models["main.calls_broken"].error
    assert isinstance(error, ProjectError)
    assert error.location == "dbt_packages/codegen/macros/broken.sql:2"  # as a project macro reports
    assert "Jinja syntax error" in error.message


def test_a_model_reading_a_source_nothing_lands_can_be_excluded(tmp_path: Path, cli: Cli) -> None:
    root = write_files(
        tmp_path / "shop",
        {
            "dbt_project.yml": "name: shop\nseeds:\n  shop:\n    +enabled: \"{{ var('load', false) }}\"\n",
            "seeds/raw_orders.csv": "id\n1\n",
            "models/sources.yml": """
                sources:
                  - name: shop
                    schema: main
                    tables: [{name: raw_orders}]
            """,
            "models/stg_orders.sql": "select id from {{ source('shop', 'raw_orders') }}",
            "models/orders.sql": "select id from {{ ref('stg_orders') }}",
            "models/other.sql": "select 1 as x",
        },
    )
    code, output = cli("run", project=root)
    assert code == 2
    assert 'models/sources.yml:4: source("shop", "raw_orders") reads main.raw_orders' in output
    assert "(used by models/stg_orders.sql)" in output
    code, output = cli("run", "-x", "stg_orders+", project=root)
    assert code == 0, output
    assert "main.other" in output
    code, output = cli("run", "--vars", "{load: true}", project=root)
    assert code == 0, output
