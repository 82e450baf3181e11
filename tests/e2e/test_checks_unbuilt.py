"""A check that reads an upstream which failed does not hold back the model it checks; `gristmill
check` does not report assets that were never built as healthy; a first build that fails its
checks does not claim a previous version is published (issue 17 item 15)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.workspace import Workspace
from tests.conftest import Cli

FEED = """
from gristmill.sources import source


@source
def customers():
    raise ValueError("the export is corrupt")
"""

FILES = {
    "sources/feed.yml": "kind: python\nmodule: pipelines/feed.py\ntables: [customers]\n",
    "pipelines/feed.py": FEED,
    # Its SQL reads nothing upstream; only its check reads the failing source table.
    "models/marts/orders.sql": "select 1 as order_id, 7 as customer_id\n",
    "checks/orders.yml": "marts.orders:\n  - not_null: order_id\n"
    "  - relationships: {column: customer_id, to: raw.feed__customers.id}\n",
}


def steps_of(root: Path, run_id: int) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        rows = db.execute("SELECT asset, status, error FROM steps WHERE run_id = ?", (run_id,)).fetchall()
    return {asset: (status, error) for asset, status, error in rows}


def test_a_check_reading_a_failed_upstream_is_skipped_and_the_model_still_builds(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 1, out  # the source failed
    steps = steps_of(root, 1)
    assert steps["raw.feed__customers"][0] == "failed"
    assert steps["marts.orders"][0] == "success", steps
    assert Workspace(root).query("select order_id from marts.orders").to_pylist() == [{"order_id": 1}]
    _, logs = cli("logs", "1", "marts.orders", project=root)
    assert "relationships" in logs and "not run: it reads raw.feed__customers" in logs
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        ran = {name for (name,) in db.execute("SELECT check_name FROM check_results WHERE run_id = 1")}
    assert ran == {"not_null(order_id)"}


def test_check_on_assets_never_built_is_not_ok(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(
        {
            "models/marts/fine.sql": "select 1 as n\n",
            "models/marts/broken.sql": "select error('the ledger is closed') as n\n",
            "models/marts/after_broken.sql": "select n from marts.broken\n",
            "checks/marts.yml": "marts.fine:\n  - not_null: n\nmarts.broken:\n  - not_null: n\n"
            "marts.after_broken:\n  - not_null: n\n",
        }
    )
    assert cli("run", project=root)[0] == 1
    code, out = cli("check", project=root)
    assert code == 1, out
    last = next(line for line in out.splitlines() if "checks passed" in line)
    assert last.startswith("INCOMPLETE") and "1/1 checks passed" in last and "2 not built" in last, out
    assert "--allow-unbuilt" in out
    code, out = cli("check", "--allow-unbuilt", project=root)
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("WARN") and "2 not built" in out
    code, out = cli("check", "-s", "marts.fine", project=root)
    assert code == 0 and out.strip().splitlines()[-1].startswith("OK"), out


def test_a_first_build_failing_its_checks_does_not_claim_a_previous_version(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(
        {
            "models/marts/totals.sql": "select null as n\n",
            "checks/totals.yml": "marts.totals:\n  - not_null: n\n",
        }
    )
    code, out = cli("run", project=root)
    assert code == 1
    assert "previous version stays published" not in out
    assert "it has no previous version" in out
    (root / "models" / "marts" / "totals.sql").write_text("select 1 as n\n")
    assert cli("run", project=root)[0] == 0
    (root / "models" / "marts" / "totals.sql").write_text("select null::int as n\n")
    code, out = cli("run", project=root)
    assert code == 1 and "previous version stays published" in out
    with pytest.raises(AssertionError):
        assert "it has no previous version" in out
