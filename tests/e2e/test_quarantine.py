"""Rows failing `quarantine` and `drop` checks are set aside; the rest publish; nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Cli

ORDERS = (
    "order_id,customer_id,amount,email\n"
    "1,10,5.0,a@x.io\n2,,7.5,b@x.io\n3,11,-2.0,c@x.io\n4,12,1.0,not-an-email\n"
    "5,,-1.0,e@x.io\n6,13,3.0,f@x.io\n"
)
FILES = {
    "sources/shop.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
    "data/orders.csv": ORDERS,
    "models/marts/orders.sql": (
        "-- checks:\n"
        "--   - not_null: {column: customer_id, severity: quarantine}\n"
        "--   - format: {column: email, as: email, severity: quarantine}\n"
        "--   - range: {column: amount, min: 0, severity: drop}\n"
        "--   - unique: order_id\n"
        "select order_id, customer_id, amount, email from raw.shop__orders\n"
    ),
}


def rows(cli: Cli, root: Path, sql: str) -> list[dict[str, object]]:
    code, out = cli("query", sql, "--format", "json", project=root)
    assert code == 0, out
    return json.loads(out)


def test_quarantined_and_dropped_rows_plus_published_rows_equal_the_input(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "3 quarantined" in out and "1 discarded" in out
    assert rows(cli, root, "select order_id from marts.orders order by 1") == [
        {"order_id": 1},
        {"order_id": 6},
    ]
    aside = rows(
        cli,
        root,
        "select _gm_reason as why, json_extract(_gm_record, '$.order_id')::int as id"
        " from marts.orders__quarantine order by id",
    )
    # Row 5 fails both a quarantine and a drop check: quarantined (kept for inspection) once.
    assert aside == [
        {"why": "not_null(customer_id)", "id": 2},
        {"why": "format(email as email)", "id": 4},
        {"why": "not_null(customer_id)", "id": 5},
    ]
    published, quarantined = 2, len(aside)
    assert published + quarantined + 1 == ORDERS.count("\n") - 1

    code, out = cli("run", project=root)
    assert code == 0 and "0 built" in out, out


def test_set_aside_severities_need_row_checks_and_a_table(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **FILES,
        "checks/orders.yml": "marts.orders:\n  - unique: {column: email, severity: quarantine}\n",
    }
    root = make_project(files)
    code, out = cli("plan", project=root)
    assert code == 2 and "checks/orders.yml:2" in out and "does not judge single rows" in out
    (root / "checks" / "orders.yml").unlink()
    view = {**FILES, "models/marts/orders.sql": "-- kind: view\n" + FILES["models/marts/orders.sql"]}
    root = make_project(view)
    code, out = cli("run", project=root)
    assert code == 1 and "needs a table" in out


def test_a_failed_check_shows_a_few_failing_rows_with_pii_masked(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **FILES,
        "models/marts/orders.sql": (
            "-- checks:\n--   - not_null: {column: customer_id, severity: warn}\n--   - unique: email\n"
            "select order_id, customer_id, amount, email from raw.shop__orders\n"
            "union all select 7, 14, 2.0, 'a@x.io'\n"
        ),
    }
    root = make_project(files)
    code, out = cli("run", project=root)
    assert code == 1
    assert "unique(email) failed for 1 row" in out
    assert "not_null(customer_id): 2 of the failing rows" in out
    assert "a@x.io" not in out and "***" in out  # email is personal data: masked
    import sqlite3

    db = sqlite3.connect(root / ".gristmill" / "state.sqlite")
    stored = dict(
        db.execute("select check_name, samples from check_results where status = 'fail'").fetchall()
    )
    db.close()
    assert json.loads(stored["unique(email)"]) == [{"email": "***", "rows": 2}]
    assert sorted(r["order_id"] for r in json.loads(stored["not_null(customer_id)"])) == [2, 5]


def test_a_schema_check_names_missing_columns_and_wrong_types(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {
        **FILES,
        "models/marts/orders.sql": "select order_id, customer_id, amount, email from raw.shop__orders\n",
        "checks/orders.yml": (
            "marts.orders:\n"
            "  - schema: {expect: {order_id: BIGINT, amount: DOUBLE, email: TEXT}}\n"
            "  - schema: {expect: {order_id: INTEGER, status: VARCHAR}, exact: true, severity: warn}\n"
        ),
    }
    root = make_project(files)
    code, out = cli("run", project=root)
    assert code == 0, out  # the first schema check passes (TEXT is VARCHAR); the second only warns
    assert "schema(order_id, status exactly) warns on 5 rows" in out
    for expected in ("missing", "absent", "customer_id"):
        assert expected in out
    files["checks/orders.yml"] = "marts.orders:\n  - schema: {expect: oops}\n"
    root = make_project(files)
    code, out = cli("plan", project=root)
    assert code == 2 and "checks/orders.yml:2" in out and "list of column names" in out
