"""Record what dbt-duckdb makes of the jaffle_shop project, for tests/e2e/test_dbt_jaffle.py.

Runs ``dbt seed``, ``dbt run`` and ``dbt test`` on a temporary copy of
``tests/e2e/data/jaffle_shop_dbt``, as it is (``jaffle_shop/``) and with rows that fail tests added
and every test made a warning (``jaffle_shop_failing/``, see ``add_failing_rows``), and writes into
``tests/e2e/dbt_expected/<scenario>/``:

- ``tables/<schema>.<name>.json``: every seed and model table, ``{"columns": [[name, type], ...],
  "rows": [[...], ...]}`` with rows sorted, dates and timestamps as ISO strings and decimals as
  strings at their declared scale;
- ``tests.json``: one entry per dbt test: its name, the generic test and its arguments, the model
  or seed it tests, status (pass/fail/warn/error) and dbt's failure count (rows its test query returns).

dbt is not a dependency of the project. To rerun, install it in a virtualenv outside the repository
and point this script at it (the Python running the script needs only ``duckdb``)::

    python3 -m venv /tmp/dbt-venv
    /tmp/dbt-venv/bin/pip install "dbt-core>=1.9,<1.11" dbt-duckdb "duckdb==1.5.5"
    .venv/bin/python tests/e2e/dbt_expected/make_expected.py --dbt /tmp/dbt-venv/bin/dbt
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import duckdb

HERE = Path(__file__).parent
PROJECT = HERE.parent / "data" / "jaffle_shop_dbt"


def _append(path: Path, rows: list[str]) -> None:
    """Add CSV rows with the file's own line ending (a mixed one makes the sniffer give up)."""
    text = path.read_bytes().decode()
    newline = "\r\n" if "\r\n" in text else "\n"
    ending = "" if text.endswith(newline) else newline
    path.write_bytes((text + ending + newline.join(rows) + newline).encode())


def add_failing_rows(project: Path) -> None:
    """A payment method outside the accepted values, an order id twice and an order of a customer
    that does not exist; every test warns instead of failing, so that all models are built."""
    _append(project / "seeds" / "raw_payments.csv", ["114,1,bitcoin,500"])
    _append(project / "seeds" / "raw_orders.csv", ["99,7,2018-04-09,placed", "100,9999,2018-04-10,shipped"])
    with (project / "dbt_project.yml").open("a") as settings:
        settings.write("\ndata_tests:\n  +severity: warn\n")


SCENARIOS = {"jaffle_shop": None, "jaffle_shop_failing": add_failing_rows}


def plain(value: Any) -> Any:
    """A value as JSON can hold it without losing what the comparison needs."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


def dump_tables(database: Path, out: Path) -> list[str]:
    con = duckdb.connect(str(database), read_only=True)
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() order by all"
    ).fetchall()
    names = []
    for schema, name in tables:
        relation = con.sql(f'select * from "{schema}"."{name}" order by all')
        columns = [[c, str(t)] for c, t in zip(relation.columns, relation.types, strict=True)]
        rows = [json.dumps([plain(v) for v in row]) for row in relation.fetchall()]
        text = '{"columns": ' + json.dumps(columns) + ',\n "rows": [\n  ' + ",\n  ".join(rows) + "\n]}\n"
        (out / "tables" / f"{schema}.{name}.json").write_text(text)
        names.append(f"{schema}.{name}")
    con.close()
    return names


def test_results(target: Path) -> list[dict[str, Any]]:
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = manifest["nodes"]
    tests = []
    for result in results:
        node = nodes[result["unique_id"]]
        metadata = node.get("test_metadata") or {}
        kwargs = {k: v for k, v in metadata.get("kwargs", {}).items() if k != "model"}
        tested = nodes.get(node.get("attached_node") or "", {})
        tests.append(
            {
                "name": node["name"],
                "test": ".".join(filter(None, [metadata.get("namespace"), metadata.get("name")])) or None,
                "kwargs": kwargs,
                "relation": f"{tested['schema']}.{tested['alias']}" if tested else None,
                "status": result["status"],
                "failures": result["failures"],
            }
        )
    return sorted(tests, key=lambda t: t["name"])


def record(dbt: str, scenario: str) -> None:
    out = HERE / scenario
    with tempfile.TemporaryDirectory() as temp:
        project = Path(temp) / "jaffle_shop"
        shutil.copytree(PROJECT, project)
        change = SCENARIOS[scenario]
        if change is not None:
            change(project)
        for command in ("seed", "run", "test"):
            subprocess.run(
                [dbt, command, "--profiles-dir", str(project), "--project-dir", str(project)],
                cwd=project,
                check=command != "test",  # failing tests are results too
            )
        tests = test_results(project / "target")
        shutil.rmtree(out, ignore_errors=True)
        (out / "tables").mkdir(parents=True)
        names = dump_tables(project / "jaffle_shop.duckdb", out)
    (out / "tests.json").write_text(json.dumps(tests, indent=1) + "\n")
    print(f"{scenario}: wrote {len(names)} tables and {len(tests)} test results to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dbt", default="dbt", help="the dbt executable (with dbt-duckdb installed)")
    args = parser.parse_args()
    for scenario in SCENARIOS:
        record(args.dbt, scenario)


if __name__ == "__main__":
    main()
