"""Every model kind built on a DuckDB target and on a PostgreSQL target of the same project, over
three runs of changing source data: every table equals across the two engines.

Accepted differences, normalised before comparing: rows are compared sorted; numbers as floats
(PostgreSQL's ``sum`` of a bigint is ``numeric``, DuckDB's an ``int128``); times as ISO text in UTC
(DuckDB's ``TIMESTAMP WITH TIME ZONE`` and PostgreSQL's ``timestamptz`` print alike then). A
validity bound a run set from its own clock reads "<run time>" (the two targets ran at different
moments). A history's ``_gm_row_hash`` is left out: it is the md5 of the tracked values as the engine spells
them in text, only ever compared with hashes the same engine made."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest

from gristmill.workspace.facade import create_demo
from tests.conftest import Cli
from tests.support.pg_engine import postgres_database, schema_prefix

pytestmark = pytest.mark.services

CUSTOMERS_1 = "customer_id,name,city,updated_at\n1,Ada,Oslo,2024-01-01\n2,Bo,Rome,2024-01-01\n"
ORDERS_1 = (
    "order_id,customer_id,order_date,region,amount\n"
    "10,1,2024-01-05,north,5.0\n11,2,2024-01-06,south,7.0\n11,2,2024-01-06,south,8.0\n"
)
FILES = {
    "sources/shop.yml": (
        "kind: files\ntables:\n  customers: {path: data/customers.csv}\n  orders: {path: data/orders.csv}\n"
    ),
    "data/customers.csv": CUSTOMERS_1,
    "data/orders.csv": ORDERS_1,
    "models/staging/orders.sql": "select * from raw.shop__orders\n",
    "models/marts/customers.sql": "-- kind: table\nselect customer_id, name, city from raw.shop__customers\n",
    "models/marts/dim_customer.sql": (
        "-- kind: dimension\n-- key: customer_id\n-- type2: [city]\n-- time: updated_at\n"
        "select customer_id, name, city, cast(updated_at as timestamp) as updated_at\n"
        "from raw.shop__customers\n"
    ),
    "models/marts/fct_orders.sql": (
        "-- kind: fact\n-- key: order_id\n"
        "-- lookups:\n--   customer_key: {dimension: marts.dim_customer, on: customer_id, at: order_date}\n"
        "select order_id, customer_id, cast(order_date as timestamp) as order_date, amount\n"
        "from staging.orders where amount <> 7.0\n"  # one row per key: a join's output order is no order
    ),
    "models/marts/daily.sql": (
        "-- kind: incremental\n-- time: order_date\n-- start: 2024-01-01\n"
        "select cast(order_date as date) as order_date, sum(amount) as revenue\n"
        "from staging.orders group by 1\n"
    ),
    "models/marts/by_region.sql": (
        "-- kind: incremental\n-- partition_by: region\n-- partitions: [north, south]\n"
        "select region, count(*) as orders from staging.orders group by 1\n"
    ),
    "models/marts/customer_history.sql": (
        "-- kind: snapshot\n-- key: customer_id\n-- time: updated_at\n"
        "select customer_id, city, cast(updated_at as timestamp) as updated_at from raw.shop__customers\n"
    ),
    # the last row per key in the query's output wins (order 11 twice: 8.0 is the later one)
    "models/marts/latest_order.sql": (
        "-- kind: incremental\n-- key: order_id\n"
        "select order_id, amount from staging.orders order by order_id, amount\n"
    ),
    "models/marts/new_orders.sql": (
        "-- kind: incremental\n"
        "select order_id, customer_id, amount from staging.orders\n"
        "where not is_incremental() or order_id > (select max(order_id) from this)\n"
    ),
    "models/marts/order_totals.py": (
        "import pyarrow as pa\nimport pyarrow.compute as pc\n\nfrom gristmill import model\n\n\n"
        '@model(reads=["marts.latest_order"], kind="table")\n'
        "def order_totals(latest_order: pa.Table) -> pa.Table:\n"
        '    total = pc.sum(latest_order["amount"]).as_py()\n'
        '    return pa.table({"orders": [latest_order.num_rows], "amount": [total]})\n'
    ),
    "models/marts/guarded.sql": (
        "-- kind: table\n-- checks: [{not_null: customer_id}]\n"
        "select customer_id, name from raw.shop__customers\n"
    ),
}
TABLES = [
    "staging.orders",
    "marts.customers",
    "marts.dim_customer",
    "marts.fct_orders",
    "marts.daily",
    "marts.by_region",
    "marts.customer_history",
    "marts.latest_order",
    "marts.new_orders",
    "marts.guarded",
    "marts.order_totals",
]
TARGETS = ("duck", "pg")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_database("gristmill_kinds") as url:
        yield url


PREFIX = schema_prefix()


def _toml(url: str, prefix: str = PREFIX) -> str:
    return (
        f'name = "shop"\ntarget = "duck"\n\n[targets.duck]\nengine = "duckdb"\n\n'
        f'[targets.pg]\nengine = "postgres"\nurl = "{url}"\nschema_prefix = "{prefix}"\n'
    )


def unserved(url: str) -> list[str]:
    """The versioned tables (in the ``_gm_<schema>`` schemas) that no environment's view reads."""
    with psycopg.connect(url) as con:
        found = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables t"
            " WHERE table_type = 'BASE TABLE' AND table_schema LIKE %s"
            " AND NOT EXISTS (SELECT FROM information_schema.view_table_usage u"
            "  WHERE u.table_schema = t.table_schema AND u.table_name = t.table_name)",
            (PREFIX.replace("_", "\\_") + "\\_gm\\_%",),
        ).fetchall()
    return sorted(row[0] for row in found)


def _value(value: object) -> object:
    if isinstance(value, str) and value[:4] == str(datetime.now().year):
        return "<run time>"  # a version closed or opened by the run itself, not by the data
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def table(cli: Cli, root: Path, target: str, name: str, *env: str) -> list[tuple[object, ...]]:
    code, out = cli(
        "query", f"select * from {name}", "--format", "json", "--target", target, *env, project=root
    )
    assert code == 0, (target, name, out)
    found = json.loads(out)
    return sorted(
        (tuple(sorted((k, _value(v)) for k, v in row.items() if k != "_gm_row_hash")) for row in found),
        key=repr,
    )


def run(cli: Cli, root: Path, *args: str) -> dict[str, str]:
    outputs = {}
    for target in TARGETS:
        code, out = cli("run", "--target", target, *args, project=root)
        outputs[target] = out
        assert code == 0, (target, out)
    return outputs


def assert_equal(cli: Cli, root: Path, *env: str) -> None:
    for name in TABLES:
        duck, pg = (table(cli, root, target, name, *env) for target in TARGETS)
        assert duck == pg, name
        assert duck, name


def test_every_kind_builds_equal_on_duckdb_and_postgres(
    make_project: Callable[..., Path], cli: Cli, pg_url: str
) -> None:
    root = make_project(FILES, toml=_toml(pg_url))
    run(cli, root)
    assert_equal(cli, root)
    assert table(cli, root, "pg", "marts.latest_order") == [
        (("amount", 5.0), ("order_id", 10.0)),
        (("amount", 8.0), ("order_id", 11.0)),
    ]

    # Ada moves; an order after the move; an order of a customer not landed yet; a late order
    (root / "data" / "customers.csv").write_text(
        CUSTOMERS_1.replace("1,Ada,Oslo,2024-01-01", "1,Ada,Bergen,2024-01-10")
    )
    (root / "data" / "orders.csv").write_text(
        ORDERS_1 + "12,1,2024-01-12,north,3.0\n13,3,2024-01-12,south,4.0\n14,2,2024-01-05,north,1.0\n"
    )
    run(cli, root)
    assert_equal(cli, root)
    assert len(table(cli, root, "pg", "marts.new_orders")) == 6  # only orders above the max were added

    # customer 3 arrives late: the fact's unknown member is fixed; a backfill restates intervals
    (root / "data" / "customers.csv").write_text(
        (root / "data" / "customers.csv").read_text() + "3,Cy,Lima,2024-01-01\n"
    )
    run(cli, root)
    run(cli, root, "-s", "daily", "--restate", "2024-01-04:2024-01-13")
    assert_equal(cli, root)
    keys = {row[1][1] for row in table(cli, root, "pg", "marts.fct_orders") if dict(row)["order_id"] == 13}
    assert keys != {-1.0}

    # write-audit-publish: a failing error check rolls the build back, the old table stays served
    before = {t: table(cli, root, t, "marts.guarded") for t in TARGETS}
    (root / "data" / "customers.csv").write_text(
        (root / "data" / "customers.csv").read_text() + ",Nobody,Nowhere,2024-01-01\n"
    )
    for target in TARGETS:
        code, out = cli("run", "--target", target, project=root)
        assert code != 0, (target, out)
        assert table(cli, root, target, "marts.guarded") == before[target], target

    # environments: dev builds what changed, promote switches prod's views; gc leaves no orphans
    (root / "data" / "customers.csv").write_text(CUSTOMERS_1)
    (root / "models" / "marts" / "customers.sql").write_text(
        "-- kind: table\nselect customer_id, name, city, 1 as flag from raw.shop__customers\n"
    )
    run(cli, root, "--env", "dev")
    assert_equal(cli, root, "--env", "dev")
    for target in TARGETS:
        code, out = cli("promote", "dev", "--to", "prod", "--target", target, project=root)
        assert code == 0, (target, out)
        assert "flag" in dict(table(cli, root, target, "marts.customers")[0])
        if target == "pg":
            assert unserved(pg_url)  # prod's former marts.customers, until gc
        code, out = cli("gc", "--target", target, project=root)
        assert code == 0, (target, out)
        code, out = cli("ls", "--target", target, project=root)
        assert code == 0 and "marts.fct_orders" in out, (target, out)
        code, out = cli("lineage", "marts.daily.revenue", "--target", target, project=root)
        assert code == 0 and "amount" in out, (target, out)
    assert unserved(pg_url) == []
    assert_equal(cli, root)


def _demo_on_targets(root: Path, url: str) -> None:
    """The demo's gristmill.toml with its engine and storage moved into a ``duck`` target, and a
    ``pg`` target on the test database (its own schema prefix)."""
    toml = root / "gristmill.toml"
    text = toml.read_text()
    storage = text[text.index("[storage]") : text.index("[engine]")]
    text = text.replace(storage, "").replace('[engine]\nkind = "duckdb"\n', "")
    text = text.replace('name = "shop"\n', 'name = "shop"\ntarget = "duck"\n', 1)
    text += "\n" + _toml(url, schema_prefix()).split("\n", 2)[2].replace(
        'engine = "duckdb"\n',
        'engine = "duckdb"\n\n' + storage.replace("[storage]", "[targets.duck.storage]"),
    )
    toml.write_text(text)


def test_the_demo_builds_every_mart_equal_on_a_duckdb_and_a_postgres_target(
    tmp_path: Path, cli: Cli, pg_url: str
) -> None:
    root = create_demo(tmp_path / "shop")
    _demo_on_targets(root, pg_url)
    code, out = cli("run", "--target", "duck", project=root)
    assert code == 0, out
    code, on_pg = cli("run", "--target", "pg", project=root)
    assert code == 0, on_pg
    marts = sorted(
        str(p.relative_to(root / "models")).replace("/", ".")[:-4] for p in root.glob("models/marts/*.sql")
    )
    assert len(marts) == 5
    for name in marts:
        duck, pg = (table(cli, root, target, name) for target in TARGETS)
        assert duck == pg, name
        assert duck, name
