"""Models split by a declared list of values (`partition_by:` + `partitions:`): each value built,
replaced and backfilled on its own, rows outside the declared values refused, not dropped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Cli

SALES = "region,amount\nemea,1\namer,2\napac,3\nemea,4\namer,5\n"

BY_REGION = """\
-- kind: incremental
-- partition_by: region
-- partitions: [emea, amer, apac]
select region, sum(case when amount < 0 then error('negative amount in ' || region) else amount end)
           as amount,
       count(*) as sales
from raw.shop__sales
group by 1
"""

FILES = {
    "sources/shop.yml": "kind: files\ntables:\n  sales: {path: data/sales.csv}\n",
    "data/sales.csv": SALES,
    "models/marts/by_region.sql": BY_REGION,
}

ROWS = "select region, amount::int as amount, sales::int as sales from marts.by_region order by region"


def rows(cli: Cli, root: Path, sql: str = ROWS) -> list[dict[str, Any]]:
    code, out = cli("query", sql, "--format", "json", project=root)
    assert code == 0, out
    return json.loads(out)


def built(cli: Cli, root: Path) -> dict[str, int]:
    return {
        r["partition"]: r["run_id"]
        for r in rows(cli, root, "select partition, run_id from _gristmill.partitions order by 1")
    }


def test_a_run_builds_every_value_and_a_partition_run_only_its_own(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    assert rows(cli, root) == [
        {"region": "amer", "amount": 7, "sales": 2},
        {"region": "apac", "amount": 3, "sales": 1},
        {"region": "emea", "amount": 5, "sales": 2},
    ]
    assert built(cli, root) == {"amer": 1, "apac": 1, "emea": 1}

    # New data for two regions; rebuilding one partition changes that one only.
    (root / "data/sales.csv").write_text(SALES + "emea,10\napac,20\n")
    code, out = cli("run", "-s", "+by_region", "--partition", "emea", project=root)
    assert code == 0, out
    assert "partitions emea" in out
    found = {r["region"]: r["amount"] for r in rows(cli, root)}
    assert found == {"amer": 7, "apac": 3, "emea": 15}
    assert built(cli, root) == {"amer": 1, "apac": 1, "emea": 2}

    code, out = cli("run", "-s", "by_region", "--partition", "europe", project=root)
    assert code == 2  # a selection error, like an unknown model
    assert 'marts.by_region has no partition "europe"' in out
    assert "emea, amer, apac" in out


def test_rows_outside_the_declared_values_fail_the_build_by_name(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project({**FILES, "data/sales.csv": SALES + "latam,7\nlatam,8\n,9\n"})
    code, out = cli("run", project=root)
    assert code == 1
    assert "rows whose region is in no declared partition: 'latam' (1 row" in out
    assert "NULL (1 row)" in out
    assert "add the values to partitions:" in out
    # One declared value alone never looks at the others: it builds.
    code, out = cli("run", "-s", "by_region", "--partition", "amer", project=root)
    assert code == 0, out
    assert rows(cli, root) == [{"region": "amer", "amount": 7, "sales": 2}]


def test_header_mistakes_name_the_file_and_line(make_project: Callable[..., Path], cli: Cli) -> None:
    cases = {
        "-- kind: incremental\n-- partition_by: region\nselect 1 as region\n": (
            "partition_by and partitions go together: partitions is missing"
        ),
        "-- kind: incremental\n-- partition_by: region\n-- partitions: [a, b, a]\nselect 1 as region\n": (
            'partitions: "a" is listed twice'
        ),
        "-- kind: incremental\n-- time: day\n-- partition_by: region\n-- partitions: [a]\nselect 1\n": (
            "partition_by and time split the table two ways"
        ),
        "-- kind: table\n-- partition_by: region\n-- partitions: [a]\nselect 1 as region\n": (
            "partition_by applies to kind: incremental"
        ),
    }
    for header, message in cases.items():
        root = make_project({"models/marts/m.sql": header})
        code, out = cli("plan", project=root)
        assert code == 2, out  # a project error
        assert message in out
        assert "models/marts/m.sql:" in out


def test_a_backfill_builds_each_value_keeps_going_past_a_failure_and_resumes(
    make_project: Callable[..., Path], cli: Cli, tmp_path: Path
) -> None:
    root = make_project({**FILES, "data/sales.csv": SALES + "amer,-1\n"})
    code, out = cli("backfill", "-s", "+by_region", project=root)
    assert code == 1, out
    assert "Backfill 1 failed: 2 built, 1 failed in 3 runs" in out
    assert "negative amount in amer" in out
    # The values that built are there; the failed one is not half there.
    assert [r["region"] for r in rows(cli, root)] == ["apac", "emea"]

    code, out = cli("backfills", "1", project=root)
    assert code == 0, out
    assert "declared values" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "failed" in lines["amer"] and "negative amount" in lines["amer"]
    assert "success" in lines["apac, emea"]

    (root / "data/sales.csv").write_text(SALES)
    code, out = cli("backfill", "--resume", "1", project=root)
    assert code == 0, out
    assert "Backfill 1 success: 3 built in 1 run" in out

    # The same table a clean run gives.
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "gristmill.toml").write_text('name = "clean"\n')
    for name, text in FILES.items():
        (clean / name).parent.mkdir(parents=True, exist_ok=True)
        (clean / name).write_text(text)
    code, out = cli("run", project=clean)
    assert code == 0, out
    assert rows(cli, root) == rows(cli, clean)

    # Only what is asked for, and only what is missing unless told otherwise.
    code, out = cli("backfill", "-s", "+by_region", "--partition", "apac", project=root)
    assert code == 0, out
    assert "1 skipped in 0 runs" in out
    code, out = cli("backfill", "-s", "+by_region", "--partition", "apac", "--reprocess", "all", project=root)
    assert code == 0, out
    assert "Backfill 3 success: 1 built in 1 run" in out
    assert built(cli, root)["apac"] > built(cli, root)["emea"]
