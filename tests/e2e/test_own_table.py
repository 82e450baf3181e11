"""Models that read their own table (``this``, ``is_incremental()``): only new source rows are
processed, and a first build, a full refresh or another environment still builds everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

LINES = "line_id,customer_id,amount\n1,1,5.0\n2,2,7.0\n3,9,1.0\n"
FILES = {
    "sources/shop.yml": (
        "kind: files\ntables:\n  customers: {path: data/customers.csv}\n  lines: {path: data/lines.csv}\n"
    ),
    "data/customers.csv": "customer_id,name\n1,Ada\n2,Bo\n",
    "data/lines.csv": LINES,
    "models/marts/dim_customer.sql": (
        "-- kind: dimension\n-- key: customer_id\nselect customer_id, name from raw.shop__customers\n"
    ),
    "models/marts/fct_lines.sql": (
        "-- kind: fact\n-- key: line_id\n"
        "-- lookups:\n--   customer_key: {dimension: marts.dim_customer, on: customer_id}\n"
        "select line_id, customer_id, amount\n"
        "from raw.shop__lines\n"
        "where not is_incremental()\n"
        "   or line_id > (select max(line_id) from this)   -- only lines not in the fact yet\n"
    ),
}


def rows(cli: Cli, root: Path, sql: str, *env: str) -> list[dict[str, object]]:
    code, out = cli("query", sql, "--format", "json", *env, project=root)
    assert code == 0, out
    return json.loads(out)


def written(out: str, asset: str) -> int:
    """Rows a run wrote into ``asset``, from its table of steps."""
    line = next(line for line in out.splitlines() if line.split("\u2502")[0].strip() == asset)
    return int(line.split("\u2502")[3])


def test_a_fact_reading_this_processes_only_new_source_rows(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0, out
    everything = "select line_id, customer_key from marts.fct_lines order by 1"
    assert rows(cli, root, everything) == [
        {"line_id": 1, "customer_key": 1},
        {"line_id": 2, "customer_key": 2},
        {"line_id": 3, "customer_key": -1},
    ]
    (root / "data" / "lines.csv").write_text(LINES + "4,2,2.0\n5,1,3.0\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert rows(cli, root, everything)[-2:] == [
        {"line_id": 4, "customer_key": 2},
        {"line_id": 5, "customer_key": 1},
    ]
    assert written(out, "marts.fct_lines") == 2  # the two new lines, not all five again
    # a full refresh reads everything again (this is empty on a first build)
    code, out = cli("run", "-s", "fct_lines", "--full-refresh", project=root)
    assert code == 0, out
    assert written(out, "marts.fct_lines") == 5
    assert len(rows(cli, root, everything)) == 5
    # a changed definition is a new table in dev: built in full there, prod keeps its own
    fact = root / "models" / "marts" / "fct_lines.sql"
    fact.write_text(fact.read_text().replace("amount\n", "amount, amount * 2 as doubled\n", 1))
    code, out = cli("run", "--env", "dev", project=root)
    assert code == 0, out
    assert rows(cli, root, "select sum(doubled) as d from marts.fct_lines", "--env", "dev") == [{"d": 36.0}]
    (root / "data" / "lines.csv").write_text(LINES + "4,2,2.0\n5,1,3.0\n6,1,1.5\n")
    code, out = cli("run", "--env", "dev", project=root)
    assert code == 0, out
    assert written(out, "marts.fct_lines") == 1
    assert rows(cli, root, "select count(*) as n from marts.fct_lines", "--env", "dev") == [{"n": 6}]


def test_this_in_a_kind_without_its_own_rows_is_an_error(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(
        {
            **FILES,
            "models/marts/fct_lines.sql": (
                "select line_id from raw.shop__lines\nexcept select line_id from this\n"
            ),
        }
    )
    code, out = cli("plan", project=root)
    assert code != 0
    assert "models/marts/fct_lines.sql:2:" in out
    assert "only incremental and fact models keep" in " ".join(out.split())


@pytest.mark.parametrize("select", ["select * from this", "select this.* from this"])
def test_select_star_from_this_is_an_error(make_project: Callable[..., Path], cli: Cli, select: str) -> None:
    fact = f"-- kind: incremental\n-- key: line_id\nselect line_id from raw.shop__lines except {select}\n"
    root = make_project({**FILES, "models/marts/fct_lines.sql": fact})
    code, out = cli("plan", project=root)
    assert code != 0 and "name the columns read from the model's own table" in out


def test_a_model_built_by_time_may_not_read_this(make_project: Callable[..., Path], cli: Cli) -> None:
    """Restating an interval, or reprocessing it for late rows, deletes its rows first: a filter
    on the model's own table would then load none of them again."""
    model = (
        "-- kind: incremental\n-- time: ts\n"
        "select line_id, current_timestamp as ts from raw.shop__lines\n"
        "where line_id > (select max(line_id) from this)\n"
    )
    root = make_project({**FILES, "models/marts/by_time.sql": model})
    code, out = cli("plan", project=root)
    assert code != 0
    assert "models/marts/by_time.sql:4: a model built by time already processes only" in " ".join(out.split())


def test_late_rows_needs_a_time_column(make_project: Callable[..., Path], cli: Cli) -> None:
    model = "-- kind: incremental\n-- key: line_id\n-- late_rows: warn\nselect line_id from raw.shop__lines\n"
    root = make_project({**FILES, "models/marts/merged.sql": model})
    code, out = cli("plan", project=root)
    assert code != 0
    assert "models/marts/merged.sql:3: late_rows applies to a model built by time interval" in " ".join(
        out.split()
    )
