"""The hand-written baseline of the fact benchmark: one DuckDB statement doing the three lookups.

Run as its own process, without importing Gristmill (it pays only for DuckDB and Python):

    .venv/bin/python bench/transform/fact_raw.py PROJECT_DIR

It attaches the project's lake as Gristmill does (DuckLake, SQLite catalog), reads the landed
TPC-H tables and the three dimensions Gristmill built, and writes ``bench.fct_lineitem_hand``
with ``CREATE TABLE … AS``: the columns of ``marts.fct_lineitem``, in the same order, each
surrogate key found by a LEFT JOIN on the natural key and ``valid_from <= o_orderdate <
valid_to`` (the unknown member, -1, when none).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HAND = """
CREATE OR REPLACE TABLE bench.fct_lineitem_hand AS
SELECT f.*,
       coalesce(c.customer_key, -1) AS customer_key,
       coalesce(p.part_key, -1) AS part_key,
       coalesce(s.supplier_key, -1) AS supplier_key
FROM (
    SELECT l.l_orderkey, l.l_linenumber, o.o_custkey AS c_custkey, l.l_partkey AS p_partkey,
           l.l_suppkey AS s_suppkey, o.o_orderdate, l.l_quantity, l.l_extendedprice, l.l_discount
    FROM raw.tpch__lineitem l JOIN raw.tpch__orders o ON l.l_orderkey = o.o_orderkey
) f
LEFT JOIN marts.dim_customer c
  ON c.c_custkey = f.c_custkey AND c._gm_valid_from <= f.o_orderdate
 AND f.o_orderdate < coalesce(c._gm_valid_to, 'infinity') AND c.customer_key <> -1
LEFT JOIN marts.dim_part p
  ON p.p_partkey = f.p_partkey AND p._gm_valid_from <= f.o_orderdate
 AND f.o_orderdate < coalesce(p._gm_valid_to, 'infinity') AND p.part_key <> -1
LEFT JOIN marts.dim_supplier s
  ON s.s_suppkey = f.s_suppkey AND s._gm_valid_from <= f.o_orderdate
 AND f.o_orderdate < coalesce(s._gm_valid_to, 'infinity') AND s.supplier_key <> -1
"""


def _packaged(name: str) -> str:
    """The extension file pip installed with ``duckdb-extension-<name>`` (no INSTALL, no network)."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    assert spec is not None and spec.submodule_search_locations, f"duckdb-extension-{name} is not installed"
    folder = Path(spec.submodule_search_locations[0]) / "extensions" / f"v{duckdb.__version__}"
    return str(folder / f"{name}.duckdb_extension")


def connect(project: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"allow_unsigned_extensions": True, "autoinstall_known_extensions": False})
    with tempfile.TemporaryDirectory() as links:  # DuckDB takes the entry point from the file name
        for name, canonical in (("sqlite", "sqlite_scanner"), ("ducklake", "ducklake")):
            link = Path(links) / f"{canonical}.duckdb_extension"
            link.symlink_to(_packaged(name))
            con.execute(f"LOAD '{link}'")
    state = (project / ".gristmill").resolve()
    con.execute(f"ATTACH 'ducklake:sqlite:{state}/catalog.sqlite' AS lake (DATA_PATH '{state}/lake/')")
    con.execute("USE lake")
    con.execute("SET TimeZone = 'UTC'")
    return con


def main() -> None:
    con = connect(Path(sys.argv[1]))
    con.execute("CREATE SCHEMA IF NOT EXISTS bench")
    started = time.perf_counter()
    con.execute(HAND)
    print(f"statement seconds: {time.perf_counter() - started:.3f}")  # the in-process figure
    con.close()


if __name__ == "__main__":
    main()
