"""Facts whose lookups found no member point at the unknown member (-1): a relationships check
accepts them, so the run summary counts them per lookup and ``unknown_members`` checks them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Cli

FILES = {
    "sources/shop.yml": (
        "kind: files\ntables:\n  customers: {path: data/customers.csv}\n  orders: {path: data/orders.csv}\n"
    ),
    "data/customers.csv": "customer_id,name\n1,Ada\n2,Bo\n",
    "data/orders.csv": "order_id,customer_id,product_id\n10,1,7\n11,2,7\n12,8,7\n13,9,7\n14,,7\n",
    "models/marts/dim_customer.sql": (
        "-- kind: dimension\n-- key: customer_id\nselect customer_id, name from raw.shop__customers\n"
    ),
    "models/marts/dim_product.sql": (
        "-- kind: dimension\n-- key: product_id\nselect 7 as product_id, 'tea' as product_name\n"
    ),
    "models/marts/fct_orders.sql": (
        "-- kind: fact\n-- key: order_id\n"
        "-- lookups:\n"
        "--   customer_key: {dimension: marts.dim_customer, on: customer_id}\n"
        "--   product_key: {dimension: marts.dim_product, on: product_id}\n"
        "-- checks:\n"
        "--   - relationships: {column: customer_key, to: marts.dim_customer.customer_key}\n"
        "--   - unknown_members: {column: customer_key, max: 3, severity: warn}\n"
        "select order_id, customer_id, product_id from raw.shop__orders\n"
    ),
}


def one_line(out: str) -> str:
    return " ".join(out.split())


def test_orphan_foreign_keys_are_counted_and_checked(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    # two orders of customers not landed and one without a customer: 3 of 5 rows, within max 3
    assert (
        "marts.fct_orders: rows at the unknown member (-1) of 5: customer_key 3, product_key 0"
        in one_line(out)
    )
    fact = root / "models" / "marts" / "fct_orders.sql"
    fact.write_text(fact.read_text().replace("max: 3, severity: warn", "max: 2"))
    code, out = cli("run", project=root)
    assert code != 0
    text = one_line(out)
    assert "unknown_members(customer_key <= 2) failed for 3 rows" in text
    assert "relationships(customer_key -> marts.dim_customer.customer_key)" not in text  # it passes
    # once the customers arrive, the rows find them and the check passes
    (root / "data" / "customers.csv").write_text("customer_id,name\n1,Ada\n2,Bo\n8,Cy\n9,Di\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "customer_key 1, product_key 0" in one_line(out)


def test_unknown_members_max_must_be_a_count(make_project: Callable[..., Path], cli: Cli) -> None:
    fact = FILES["models/marts/fct_orders.sql"].replace("max: 3, severity: warn", "max: lots")
    root = make_project({**FILES, "models/marts/fct_orders.sql": fact})
    code, out = cli("plan", project=root)
    assert code != 0
    assert 'unknown_members "max" is how many rows may point at the unknown member, not "lots"' in one_line(
        out
    )
