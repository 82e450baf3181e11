"""Environments, column-level change detection, lineage and dialects, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

ORDERS = "order_id,customer_id,amount,status\n1,10,5.0,paid\n2,10,7.5,paid\n3,11,2.0,open\n4,12,1.0,paid\n"
FILES = {
    "sources/shop.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
    "data/orders.csv": ORDERS,
    "models/staging/orders.sql": (
        "select order_id, customer_id, amount, status, amount * 2 as doubled from raw.shop__orders\n"
    ),
    "models/marts/revenue.sql": (
        "-- checks: [{not_null: customer_id}]\n"
        "select customer_id, sum(amount) as revenue from staging.orders group by customer_id\n"
    ),
    "models/marts/statuses.sql": "select status, count(*) as orders from staging.orders group by status\n",
    "models/marts/top.sql": "select customer_id, revenue from marts.revenue where revenue > 3\n",
}


def query(cli: Cli, root: Path, sql: str, env: str = "prod") -> list[dict[str, object]]:
    code, out = cli("query", sql, "--format", "json", "--env", env, project=root)
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def shop(make_project: Callable[..., Path], cli: Cli) -> Path:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "5 built" in out  # one source, four models
    return root


def edit(root: Path, model: str, old: str, new: str) -> None:
    path = root / "models" / model
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_dev_environment_builds_only_what_changed_and_promotes_without_rebuilding(
    shop: Path, cli: Cli
) -> None:
    edit(shop, "staging/orders.sql", "amount * 2 as doubled", "amount * 3 as doubled")
    code, out = cli("run", "--env", "dev", project=shop)
    assert code == 0, out
    # Nothing reads "doubled": one table is built, every other dev view points at prod's tables.
    assert "1 built, 3 switched, 1 skipped" in out
    assert query(cli, shop, "select max(doubled) as m from staging.orders", "dev") == [{"m": 22.5}]
    assert query(cli, shop, "select max(doubled) as m from staging.orders") == [{"m": 15.0}]

    code, out = cli("promote", "dev", project=shop)
    assert code == 0, out
    assert "1 model switched" in out
    assert query(cli, shop, "select max(doubled) as m from staging.orders") == [{"m": 22.5}]
    code, out = cli("run", project=shop)
    assert code == 0, out
    assert "0 built" in out


def test_plan_names_breaking_non_breaking_and_indirect_changes(shop: Path, cli: Cli) -> None:
    edit(shop, "staging/orders.sql", "amount * 2 as doubled", "amount * 2 as doubled, 1 as one")
    code, out = cli("plan", "dev", project=shop)
    assert code == 0, out
    assert "non-breaking" in out and "adds one" in out
    assert "1 to build" in out

    edit(
        shop,
        "staging/orders.sql",
        "select order_id, customer_id, amount,",
        "select order_id, customer_id, -amount as amount,",
    )
    code, out = cli("plan", "dev", project=shop)
    assert code == 0, out
    lines = {
        line.split()[0]: line for line in out.splitlines() if line.strip().startswith(("staging.", "marts."))
    }
    assert "breaking" in lines["staging.orders"] and "amount" in lines["staging.orders"]
    assert "reads changed staging.orders.amount" in lines["marts.revenue"]
    assert "indirect" in lines["marts.top"]  # reads revenue, which changed
    assert "unchanged" in lines["marts.statuses"]  # reads only status


def test_a_failing_check_keeps_the_environment_on_its_previous_tables(shop: Path, cli: Cli) -> None:
    edit(shop, "marts/revenue.sql", "select customer_id,", "select null::int as customer_id,")
    code, out = cli("run", project=shop)
    assert code == 1
    assert "not_null(customer_id) failed" in out
    assert query(cli, shop, "select count(*) as n from marts.revenue where customer_id is null") == [{"n": 0}]
    assert query(cli, shop, "select count(*) as n from marts.top") == [{"n": 1}]


def test_a_removed_model_loses_its_view(shop: Path, cli: Cli) -> None:
    (shop / "models" / "marts" / "statuses.sql").unlink()
    code, out = cli("plan", project=shop)
    assert "marts.statuses" in out and "removed" in out
    code, out = cli("run", project=shop)
    assert code == 0, out
    code, out = cli("query", "select * from marts.statuses", project=shop)
    assert code != 0


def test_lineage_shows_columns_upstream_and_downstream(shop: Path, cli: Cli) -> None:
    code, out = cli("lineage", "marts.revenue.revenue", project=shop)
    assert code == 0, out
    assert "staging.orders.amount" in out and "raw.shop__orders.amount" in out
    assert "marts.top.revenue" in out  # downstream
    code, out = cli("lineage", "staging.orders.status", "--no-upstream", project=shop)
    assert code == 0, out
    assert "marts.statuses.status" in out and "marts.statuses.orders" in out
    assert "marts.revenue" not in out
    code, out = cli("lineage", "marts.revenue.revnue", project=shop)
    assert code != 0 and "revenue" in out


def test_other_dialects_are_transpiled_and_unparseable_sql_passes_through(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **FILES,
        "models/marts/flags.sql": (
            "-- dialect: snowflake\n"
            "select order_id, iff(amount > 3, 'big', 'small') as size from staging.orders\n"
        ),
        "models/marts/lists.sql": (
            "-- dialect: postgres\n"
            "-- passthrough: true\n"
            "select order_id, list_transform([amount], lambda x: x + 1) as bumped from staging.orders\n"
        ),
    }
    root = make_project(files)
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "warning:" in out and "models/marts/lists.sql:3" in out and "runs as written" in out
    assert query(cli, root, "select size from marts.flags order by order_id") == [
        {"size": "big"},
        {"size": "big"},
        {"size": "small"},
        {"size": "small"},
    ]
    assert query(cli, root, "select bumped from marts.lists where order_id = 1") == [{"bumped": [6.0]}]
    # The pass-through model still depends on what it reads.
    code, out = cli("run", "-s", "lists", project=root)
    assert code == 0, out
    code, out = cli("ls", project=root)
    assert "marts.lists" in out


def test_an_unknown_dialect_is_a_project_error(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project({**FILES, "models/marts/x.sql": "-- dialect: snowflak\nselect 1 as x\n"})
    code, out = cli("plan", project=root)
    assert code == 2
    assert "models/marts/x.sql:1" in out and "snowflake" in out


def physical_tables(cli: Cli, root: Path) -> list[str]:
    found = query(
        cli,
        root,
        "select schema_name || '.' || table_name as t from duckdb_tables()"
        " where database_name = 'lake' and schema_name like '\\_gm\\_%' escape '\\' order by 1",
    )
    return [str(r["t"]) for r in found]


def test_new_source_data_builds_new_tables_and_drops_the_ones_they_replace(shop: Path, cli: Cli) -> None:
    first = physical_tables(cli, shop)
    assert len(first) == 4
    (shop / "data" / "orders.csv").write_text(ORDERS + "5,13,9.0,paid\n")
    code, out = cli("run", project=shop)
    assert code == 0, out
    assert "source data changed: raw.shop__orders" in out
    second = physical_tables(cli, shop)
    assert len(second) == 4 and not set(first) & set(second)
    assert query(cli, shop, "select count(*) as n from marts.top") == [{"n": 2}]

    # A changed definition keeps the previous version (an environment may go back to it) until gc.
    edit(shop, "marts/top.sql", "revenue > 3", "revenue > 10")
    code, out = cli("run", project=shop)
    assert code == 0, out
    assert len(physical_tables(cli, shop)) == 5
    code, out = cli("gc", project=shop)
    assert code == 0, out
    assert "1 unused table dropped" in out
    assert len(physical_tables(cli, shop)) == 4
    assert query(cli, shop, "select count(*) as n from marts.top") == [{"n": 1}]
    code, out = cli("run", project=shop)
    assert code == 0 and "0 built" in out, out


def test_any_duckdb_reads_the_views_under_its_own_name_for_the_lake(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    from gristmill._util.duckdb_extensions import connect

    files = {**FILES, "models/staging/orders.sql": "-- kind: view\n" + FILES["models/staging/orders.sql"]}
    root = make_project(files)
    code, out = cli("run", project=root)
    assert code == 0, out
    con = connect(extensions=("ducklake", "sqlite"))
    catalog = (root / ".gristmill" / "catalog.sqlite").as_posix()
    lake = (root / ".gristmill" / "lake").as_posix() + "/"
    con.execute(f"ATTACH 'ducklake:sqlite:{catalog}' AS elsewhere (DATA_PATH '{lake}', READ_ONLY)")
    assert con.sql("select count(*) from elsewhere.staging.orders").fetchone() == (4,)
    assert con.sql("select sum(revenue) from elsewhere.marts.revenue").fetchone() == (15.5,)
    con.close()


def test_gc_keeps_the_tables_a_served_view_still_reads(make_project: Callable[..., Path], cli: Cli) -> None:
    files = {
        **FILES,
        "models/marts/open_orders.sql": (
            "-- kind: view\nselect order_id from staging.orders where status = 'open'\n"
        ),
    }
    root = make_project(files)
    assert cli("run", project=root)[0] == 0
    # Nothing in the view reads "doubled": the view keeps its version, and reads the old table.
    edit(root, "staging/orders.sql", "amount * 2 as doubled", "amount * 3 as doubled")
    code, out = cli("run", project=root)
    assert code == 0 and "1 built" in out, out
    code, out = cli("gc", project=root)
    assert code == 0 and "0 unused tables dropped" in out, out
    assert query(cli, root, "select order_id from marts.open_orders") == [{"order_id": 3}]


def test_a_lake_changed_behind_gristmills_back_is_read_again(shop: Path, cli: Cli) -> None:
    from gristmill.engines import Relation, open_engine
    from gristmill.project import load_project

    # A no-op run trusts what the last run left only while the lake's snapshot is unchanged.
    assert "0 built" in cli("run", project=shop)[1]
    [table] = [t for t in physical_tables(cli, shop) if ".top__" in t]
    engine = open_engine(load_project(shop).settings, shop)
    try:
        engine.drop(Relation.of(table))
    finally:
        engine.close()
    code, out = cli("run", project=shop)
    assert code == 0 and "1 built" in out and "missing from the lake" in out, out
