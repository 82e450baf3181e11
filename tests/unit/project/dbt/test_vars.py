"""Jinja inside dbt configs is rendered (as dbt renders dbt_project.yml and property files), and
``--vars`` sets vars from the command line over those of the project and its packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.project import load_project
from tests.conftest import Cli, write_files

PROJECT_YML = """
name: shop
vars:
  mart_schema: marts
seeds:
  shop:
    +enabled: "{{ var('load_source_data', false) }}"
    lookups:
      +enabled: true
models:
  shop:
    +materialized: table
    marts:
      +schema: "{{ var('mart_schema') }}"
      +tags: ["{{ 'finance' if var('finance', false) else 'plain' }}"]
"""


@pytest.fixture(autouse=True)
def _no_personal_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)


def project_files(tmp_path: Path) -> Path:
    return write_files(
        tmp_path / "shop",
        {
            "dbt_project.yml": PROJECT_YML,
            "seeds/raw_orders.csv": "id,amount\n1,10\n2,20\n",
            "seeds/lookups/countries.csv": "code\nNL\n",
            "models/marts/revenue.sql": "select {{ var('factor', 1) }} as factor, 1 as x",
            "models/schema.yml": """
                version: 2
                models:
                  - name: revenue
                    config:
                      enabled: "{{ env_var('REVENUE_ENABLED', 'true') }}"
            """,
        },
    )


def seeds_of(project: object) -> set[str]:
    sources = getattr(project, "sources")  # noqa: B009 - a Project
    return {t.asset for s in sources.values() for t in s.tables.values()}


def test_jinja_in_configs_is_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = load_project(project_files(tmp_path))
    # var('load_source_data', false) renders False: the seed is disabled, as dbt disables it
    assert seeds_of(project) == {"main.countries"}
    revenue = project.models["main_marts.revenue"]
    assert revenue.tags == ("plain",)
    monkeypatch.setenv("REVENUE_ENABLED", "false")
    assert "main_marts.revenue" not in load_project(project_files(tmp_path)).models


def test_vars_from_the_command_line_win(tmp_path: Path) -> None:
    root = project_files(tmp_path)
    project = load_project(
        root, {"load_source_data": True, "mart_schema": "gold", "finance": True, "factor": 3}
    )
    assert seeds_of(project) == {"main.raw_orders", "main.countries"}
    revenue = project.models["main_gold.revenue"]
    assert revenue.tags == ("finance",)
    assert revenue.sql.startswith("select 3 as factor")


def test_vars_on_the_cli(tmp_path: Path, cli: Cli) -> None:
    root = project_files(tmp_path)
    code, output = cli("run", "--vars", "{load_source_data: true}", project=root)
    assert code == 0, output
    assert "main.raw_orders" in output
    code, output = cli("ls", "--vars", '{"load_source_data": true, "mart_schema": "gold"}', project=root)
    assert code == 0 and "main_gold.revenue" in output and "main.raw_orders" in output
    code, output = cli("plan", "--vars", "[1, 2]", project=root)
    assert code == 2 and "--vars must be a mapping" in output
    code, output = cli("plan", "--vars", "{a: [", project=root)
    assert code == 2 and "--vars is not YAML or JSON" in output


def test_vars_on_a_gristmill_project_are_refused(tmp_path: Path) -> None:
    root = write_files(tmp_path / "g", {"gristmill.toml": 'name = "g"\n'})
    with pytest.raises(ConfigError, match="--vars sets the vars of a dbt project"):
        load_project(root, {"x": 1})
