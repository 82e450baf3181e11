"""``gristmill diff`` and ``plan --diff`` on a project with a prod and a dev environment: a planted
change (one value edited, one row gone, one row added, a column added) is found by key, in the
engine; snapshots travel back; exit codes say equal (0), different (1) or failed (2)."""

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
        "-- checks: [{unique: order_id}]\n"
        "select order_id, customer_id, amount, status from raw.shop__orders\n"
    ),
    "models/marts/revenue.sql": (
        "select customer_id, sum(amount) as revenue from staging.orders group by customer_id\n"
    ),
    "models/marts/lines.sql": "select customer_id, status from staging.orders\n",
}
PLANTED = (
    "-- checks: [{unique: order_id}]\n"
    "select order_id, customer_id,\n"
    "  case when order_id = 2 then amount + 1 else amount end as amount, status, 'x' as channel\n"
    "from raw.shop__orders where order_id <> 3\n"
    "union all select 9, 13, 4.0, 'open', 'y'\n"
)


@pytest.fixture
def shop(make_project: Callable[..., Path], cli: Cli) -> Path:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    (root / "models/staging/orders.sql").write_text(PLANTED)
    code, out = cli("run", "--env", "dev", project=root)
    assert code == 0, out
    return root


def diff_json(cli: Cli, root: Path, *args: str) -> tuple[int, dict[str, object]]:
    code, out = cli("diff", *args, "-o", "json", project=root)
    assert code in (0, 1), out
    return code, json.loads(out)


def test_a_planted_change_is_found_by_key(shop: Path, cli: Cli) -> None:
    code, found = diff_json(cli, shop, "staging.orders", "--env", "dev")
    assert code == 1 and found["equal"] is False
    assert found["key"] == ["order_id"] and "unique(order_id)" in str(found["key_from"])
    assert found["rows"] == {"base": 4, "head": 4, "added": 1, "removed": 1, "changed": 1, "unchanged": 2}
    assert found["schema"] == {
        "added": [{"column": "channel", "type": "VARCHAR"}],
        "removed": [],
        "retyped": [],
    }
    assert found["columns"] == {"customer_id": 0, "amount": 1, "status": 0}
    samples = found["samples"]
    assert isinstance(samples, dict)
    assert [s["key"] for s in samples["added"]] == [{"order_id": 9}]
    assert [s["key"] for s in samples["removed"]] == [{"order_id": 3}]
    (changed,) = samples["changed"]
    assert (
        changed["changed"] == ["amount"]
        and changed["base"]["amount"] == 7.5
        and changed["head"]["amount"] == 8.5
    )

    code, out = cli("diff", "orders", "--env", "dev", project=shop)  # a name alone, the readable table
    assert code == 1, out
    assert "DIFFERENT" in out and "1 added" in out and "7.5 -> 8.5" in out and "channel" in out


def test_what_cannot_be_compared_exits_two_naming_the_fix(shop: Path, cli: Cli) -> None:
    code, out = cli("diff", "staging.orders", "--env", "prod", "--against", "prod", project=shop)
    assert code == 2 and "nothing to compare" in out, out
    code, out = cli(
        "diff", "marts.revenue", "--env", "dev", "--key", "customer_id", "--columns", "revenue", project=shop
    )
    assert code == 1 and "revenue" in out, out  # customer 11 gone, 13 new, 10's revenue up
    code, out = cli("diff", "marts.revenue", "--env", "dev", project=shop)
    assert code == 2 and "declares no key" in out and "--key" in out, out
    code, out = cli("diff", "staging.orders", "--env", "dev", "--key", "nope", project=shop)
    assert code == 2 and "key column nope" in out, out
    code, out = cli("diff", "staging.ordrs", "--env", "dev", project=shop)
    assert code == 2 and 'did you mean "staging.orders"' in out, out


def test_duplicated_keys_are_counted_not_joined(shop: Path, cli: Cli) -> None:
    code, found = diff_json(cli, shop, "marts.lines", "--env", "dev", "--key", "customer_id")
    assert code == 1
    duplicates = found["duplicates"]
    assert isinstance(duplicates, dict)
    assert duplicates["base"]["duplicate_keys"] == 1 and duplicates["base"]["duplicate_rows"] == 2
    assert duplicates["base"]["sample"] == [{"customer_id": 10, "rows": 2}]
    rows = found["rows"]
    assert isinstance(rows, dict)
    # Customer 10 is left out; 11 gone, 13 new, 12 unchanged: no row counted twice.
    assert (rows["added"], rows["removed"], rows["changed"], rows["unchanged"]) == (1, 1, 0, 1)
    code, out = cli("diff", "marts.lines", "--env", "dev", "--key", "customer_id", project=shop)
    assert code == 1 and "1 key held by 2 rows" in out and "Duplicated keys in prod" in out, out


def test_a_snapshot_compares_with_the_past(shop: Path, cli: Cli) -> None:
    code, out = cli("promote", "dev", project=shop)
    assert code == 0, out
    code, now = diff_json(cli, shop, "staging.orders", "--env", "prod", "--as-of", "2999-01-01T00:00:00Z")
    assert code == 0 and now["equal"] is True and "at snapshot" in str(now["base"])
    # Walk back through the snapshots until prod's table was the one first built.
    snapshot = int(str(now["base"]).rsplit(" ", 1)[1])
    for earlier in range(snapshot, 0, -1):
        code, out = cli(
            "diff", "staging.orders", "--env", "prod", "--snapshot", str(earlier), "-o", "json", project=shop
        )
        if code == 1:
            found = json.loads(out)
            assert found["rows"]["added"] == 1 and found["rows"]["changed"] == 1
            break
    else:
        pytest.fail("no snapshot holds prod's first table")
    code, out = cli(
        "diff", "staging.orders", "--env", "prod", "--snapshot", "1", "--as-of", "2020-01-01", project=shop
    )
    assert code == 2 and "pass one of them" in out


def test_plan_diff_shows_each_changed_models_data_diff(shop: Path, cli: Cli) -> None:
    code, out = cli("plan", "dev", "--diff", project=shop)
    assert code == 0, out
    assert "staging.orders" in out and "1 added" in out and "7.5 -> 8.5" in out
    assert "marts.revenue: no diff: marts.revenue declares no key" in out
    code, out = cli("plan", "dev", "--diff", "-o", "json", project=shop)
    assert code == 0, out
    diffs = {entry["asset"]: entry for entry in json.loads(out)["diffs"]}
    assert diffs["staging.orders"]["diff"]["rows"]["changed"] == 1
    assert "declares no key" in diffs["marts.revenue"]["skipped"]


def test_the_demo_projects_dev_build_is_diffed_against_prod(demo: Path, cli: Cli) -> None:
    code, out = cli("run", project=demo)
    assert code == 0, out
    model = demo / "models" / "marts" / "dim_track.sql"
    text = model.read_text()
    assert "    unit_price\n" in text
    # Planted: the price of the Rock tracks up by 1 (1,297 of 3,503 tracks in Chinook).
    model.write_text(
        text.replace(
            "    unit_price\n",
            "    case when genre_name = 'Rock' then unit_price + 1 else unit_price end as unit_price\n",
        )
    )
    code, out = cli("run", "--env", "dev", project=demo)
    assert code == 0, out
    code, found = diff_json(cli, demo, "dim_track", "--env", "dev", "--sample", "3")
    assert code == 1
    rows = found["rows"]
    assert isinstance(rows, dict)
    assert (rows["base"], rows["added"], rows["removed"], rows["changed"]) == (3503, 0, 0, 1297)
    assert found["columns"] == {c: (1297 if c == "unit_price" else 0) for c in found["columns"]}  # type: ignore[union-attr]
    samples = found["samples"]
    assert isinstance(samples, dict) and len(samples["changed"]) == 3
    assert all(s["changed"] == ["unit_price"] for s in samples["changed"])
    code, found = diff_json(cli, demo, "dim_customer", "--env", "dev")
    assert code == 0 and found["equal"] is True  # dev's view points at prod's table
