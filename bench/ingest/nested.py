"""1,000,000 nested records (10 fields, a nested object, a list) into parent + child tables.

Gristmill (files source, ``nested: child_tables``) against a hand-written pyarrow path that
builds the same two tables, and against dlt's standard dict path (run in its own venv, as a
user would), all writing into DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from bench.ingest.common import gristmill_process, lake, python_process, report, report_processes, timed
from bench.ingest.plain_duckdb import connect

DLT_VENV = Path(__file__).parents[1] / ".venv-dlt"


def write_records(path: Path, n: int) -> None:
    """NDJSON made by DuckDB itself: fast to generate, identical every time."""
    con = connect(())
    con.execute(f"""
        COPY (
          SELECT i AS id, 'user_' || (i % 5000) AS user_name, i % 97 AS shop_id,
                 round((i % 1000) / 7.0, 2) AS amount, i % 2 = 0 AS paid,
                 TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at,
                 ['red','green','blue'][1 + i % 3] AS color, i % 13 AS quantity,
                 'note ' || (i % 11) AS note,
                 {{'city': 'city_' || (i % 300), 'zip': lpad((i % 99999)::varchar, 5, '0')}} AS address,
                 [{{'sku': 'sku_' || (i % 40), 'qty': 1 + i % 3}},
                  {{'sku': 'sku_' || (i % 41), 'qty': 2}}] AS items
          FROM range({n}) t(i)
        ) TO '{path}' (FORMAT json)
    """)
    con.close()


def project(folder: Path, data: Path) -> Path:
    root = folder / "project"
    (root / "sources").mkdir(parents=True)
    (root / "gristmill.toml").write_text('name = "bench"\n')
    (root / "sources" / "src.yml").write_text(
        f"kind: files\nnested: child_tables\ntables:\n  orders: {{path: {data}, format: ndjson}}\n"
    )
    return root


def gristmill(folder: Path, data: Path) -> None:
    from gristmill.workspace import Workspace  # here, not at the top: the baseline must not pay for it

    result = Workspace(project(folder, data)).run()
    assert result.ok, [s.error for s in result.steps]


def hand_written(folder: Path, data: Path) -> None:
    """The fastest straightforward pyarrow code for the same tables."""
    table = pj.read_json(data)
    row_id = pa.array(np.arange(table.num_rows, dtype=np.int64))
    address = table.column("address").combine_chunks()
    parent = table.drop_columns(["address", "items"]).append_column("address__city", address.field("city"))
    parent = parent.append_column("address__zip", address.field("zip")).append_column("_row_id", row_id)
    items = table.column("items").combine_chunks()
    owners = pc.take(row_id, pc.list_parent_indices(items))
    flat = pc.list_flatten(items)
    offsets = items.offsets.to_numpy()
    index = np.arange(len(flat)) - np.repeat(offsets[:-1], np.diff(offsets)) + 1
    child = pa.table(
        {
            "_parent_id": owners,
            "_list_index": pa.array(index),
            "sku": flat.field("sku"),
            "qty": flat.field("qty"),
        }
    )
    con = lake(folder / "lake")
    con.register("parent_rows", parent)
    con.register("child_rows", child)
    con.execute("CREATE TABLE raw.orders AS SELECT * FROM parent_rows")
    con.execute("CREATE TABLE raw.orders__items AS SELECT * FROM child_rows")
    con.close()


HAND = """
import sys
from pathlib import Path
from bench.ingest.nested import hand_written
hand_written(Path(sys.argv[1]), Path(sys.argv[2]))
"""

DLT_SCRIPT = """
import json, sys, dlt
path, folder = sys.argv[1], sys.argv[2]
def records():
    with open(path) as f:
        for line in f:
            yield json.loads(line)
pipeline = dlt.pipeline("bench", destination=dlt.destinations.duckdb(f"{folder}/dlt.duckdb"),
                        dataset_name="raw", pipelines_dir=f"{folder}/pipelines")
info = pipeline.run(dlt.resource(records, name="orders"))
print(info)
"""


def dlt(folder: Path, data: Path) -> None:
    python = DLT_VENV / "bin" / "python"
    subprocess.run([python, "-c", DLT_SCRIPT, str(data), str(folder)], check=True, capture_output=True)


def ensure_dlt() -> bool:
    if (DLT_VENV / "bin" / "python").exists():
        return True
    print("setting up dlt in its own venv (bench/.venv-dlt) ...", flush=True)
    uv = Path(sys.executable).with_name("uv")
    made = subprocess.run([uv, "venv", "-q", "-p", "3.11", str(DLT_VENV)], capture_output=True)
    env = {**os.environ, "VIRTUAL_ENV": str(DLT_VENV)}
    done = subprocess.run([uv, "pip", "install", "-q", "dlt[duckdb]"], env=env, capture_output=True)
    return made.returncode == 0 and done.returncode == 0


def main(n: int = 1_000_000, with_dlt: bool = True) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "orders.ndjson"
        write_records(data, n)
        rows = [
            ("hand-written pyarrow", *timed(lambda: hand_written(folder / "hand", data))),
            ("gristmill (child_tables)", *timed(lambda: gristmill(folder / "gm", data))),
        ]
        if with_dlt and ensure_dlt():
            rows.append(("dlt (dict path)", *timed(lambda: dlt(folder / "dlt", data))))
        report(
            f"{n:,} nested records -> parent + child table ({data.stat().st_size / 1e6:.0f} MB NDJSON)",
            rows,
            "hand-written pyarrow",
            "gristmill <= 1.1x hand-written; dlt >= 8x gristmill",
        )
        if len(rows) == 3:
            print(f"dlt / gristmill: {rows[2][1] / rows[1][1]:.1f}x")
        processes = [
            ("hand-written pyarrow", *python_process(HAND, folder / "hand2", data)),
            ("gristmill run (child_tables)", *gristmill_process(project(folder / "gm2", data))),
        ]
        report_processes(f"{n:,} nested records", processes, "hand-written pyarrow")
        from gristmill.workspace import Workspace

        check = Workspace(folder / "gm" / "project").query(
            "select (select count(*) from raw.src__orders) as parents,"
            " (select count(*) from raw.src__orders__items) as children"
        )
        print("gristmill tables:", json.dumps(check.to_pylist()[0]))


if __name__ == "__main__":
    counts = [int(a) for a in sys.argv[1:] if not a.startswith("--")]  # [rows] and --no-dlt, any order
    main(counts[0] if counts else 1_000_000, "--no-dlt" not in sys.argv)
