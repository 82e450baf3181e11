"""dbt hooks run: model pre/post hooks around the build (``{{ this }}`` the table being built) and
on-run-start/on-run-end around the run; semantic models, metrics, saved queries and exposures
are loaded as declared and reported, never dropped silently."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gristmill.project import load_project
from gristmill.workspace import Workspace
from tests.conftest import Cli, write_files

PROJECT_YML = """
name: shop
on-run-start:
  - "create table if not exists main.audit_log (event varchar, n bigint)"
  - "insert into main.audit_log values ('start', 0)"
on-run-end: "insert into main.audit_log select 'end', count(*) from {{ ref('orders') }}"
models:
  shop:
    +materialized: table
    +post-hook: "insert into main.audit_log select 'built {{ this.name }}', count(*) from {{ this }}"
"""

FILES = {
    "dbt_project.yml": PROJECT_YML,
    "seeds/raw_orders.csv": "id,amount\n1,10\n2,-5\n3,7\n",
    "models/orders.sql": """
        {{ config(
            pre_hook="insert into main.audit_log values ('pre orders', 0)",
            post_hook=["delete from {{ this }} where amount < 0"],
        ) }}
        select id, amount from {{ ref('raw_orders') }}
    """,
    "models/semantic.yml": """
        semantic_models:
          - name: orders
            model: ref('orders')
            entities: [{name: order, type: primary, expr: id}]
            measures: [{name: amount_total, agg: sum, expr: amount}]
        metrics:
          - name: revenue
            label: Revenue
            type: simple
            type_params: {measure: amount_total}
        saved_queries:
          - name: revenue_by_day
            query_params: {metrics: [revenue]}
        exposures:
          - name: weekly_report
            type: dashboard
            owner: {name: Ann}
            depends_on: [ref('orders')]
    """,
}


@pytest.fixture(autouse=True)
def _no_personal_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)


def test_hooks_run_in_order_with_this_as_the_built_table(tmp_path: Path, cli: Cli) -> None:
    root = write_files(tmp_path / "shop", FILES)
    project = load_project(root)
    orders = project.models["main.orders"]
    # the project's hook first, then the model's own, as dbt orders them
    assert [h.sql for h in orders.post_hooks] == [
        "insert into main.audit_log select 'built orders', count(*) from main.orders",
        "delete from main.orders where amount < 0",
    ]
    assert [h.sql for h in orders.pre_hooks] == ["insert into main.audit_log values ('pre orders', 0)"]
    code, output = cli("run", project=root)
    assert code == 0, output
    workspace = Workspace(root)
    # the post-hook ran on the new table before it was published: the negative row is gone
    assert workspace.query("select id from main.orders order by id", "prod").column("id").to_pylist() == [
        1,
        3,
    ]
    log = workspace.query("select event, n from main.audit_log", "prod").to_pylist()
    assert log == [
        {"event": "start", "n": 0},
        {"event": "pre orders", "n": 0},
        {"event": "built orders", "n": 3},
        {"event": "end", "n": 2},
    ]
    # nothing changed: no model is built again, but on-run-start/end run on every run as in dbt
    code, output = cli("run", project=root)
    assert code == 0, output
    events = Workspace(root).query("select event from main.audit_log", "prod").column("event").to_pylist()
    assert events[4:] == ["start", "end"]
    # a changed hook changes what is built: the model builds again and its hooks run
    model = root / "models" / "orders.sql"
    model.write_text(model.read_text().replace("amount < 0", "amount < 8"))
    code, output = cli("run", project=root)
    assert code == 0, output
    assert Workspace(root).query("select id from main.orders", "prod").column("id").to_pylist() == [1], output


def test_a_failing_hook_fails_its_model_and_names_the_hook(tmp_path: Path, cli: Cli) -> None:
    files = dict(FILES)
    files["dbt_project.yml"] = "name: shop\nmodels:\n  shop:\n    +materialized: table\n"
    files["models/orders.sql"] = (
        "{{ config(post_hook='delete from {{ this }} where no_such_column = 1') }}\n"
        "select id, amount from {{ ref('raw_orders') }}\n"
    )
    root = write_files(tmp_path / "shop", files)
    code, output = cli("run", project=root)
    assert code == 1
    assert "models/orders.sql (post-hook): post-hook failed" in output
    assert "no_such_column" in output


def test_hooks_of_seeds_are_reported_not_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = {
        "dbt_project.yml": "name: shop\nseeds:\n  shop:\n    +post-hook: 'analyze {{ this }}'\n",
        "seeds/raw_orders.csv": FILES["seeds/raw_orders.csv"],
    }
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        load_project(write_files(tmp_path / "shop", files))
    assert [r.getMessage() for r in caplog.records] == [
        "seeds/raw_orders.csv: the seed's hooks are not run: seeds land as a Gristmill source"
    ]


def test_semantic_models_metrics_and_exposures_are_kept_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_files(tmp_path / "shop", FILES)
    with caplog.at_level(logging.WARNING, logger="gristmill.dbt"):
        project = load_project(root)
    kinds = {(s.kind, s.name): s for s in project.semantic}
    assert set(kinds) == {
        ("semantic_model", "orders"),
        ("metric", "revenue"),
        ("saved_query", "revenue_by_day"),
        ("exposure", "weekly_report"),
    }
    orders = kinds[("semantic_model", "orders")]
    assert orders.reads == ("main.orders",)
    assert orders.location == "models/semantic.yml:2"
    assert orders.data["measures"][0]["name"] == "amount_total"
    assert kinds[("exposure", "weekly_report")].reads == ("main.orders",)
    assert any(
        "1 semantic model, 1 metric, 1 saved query, 1 exposure loaded and kept as declared" in r.getMessage()
        for r in caplog.records
    )


def test_a_failing_on_run_start_stops_the_run_naming_its_line(tmp_path: Path, cli: Cli) -> None:
    files = dict(FILES)
    files["dbt_project.yml"] = "name: shop\non-run-start:\n  - select 1\n  - select * from no_such_table\n"
    root = write_files(tmp_path / "shop", files)
    code, output = cli("run", project=root)
    assert code == 1
    assert "dbt_project.yml:4: on-run-start failed" in output and "no_such_table" in output
