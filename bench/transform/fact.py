"""The point-in-time fact on TPC-H: Gristmill's ``fact`` build against a hand-written DuckDB query.

    .venv/bin/python -m bench.transform.fact               # SF 0.1, a couple of minutes
    .venv/bin/python -m bench.transform.fact --sf 1        # the target: ratio <= 1.5

A star schema over TPC-H data generated offline by DuckDB's packaged ``tpch`` extension (the
``duckdb-extension-tpch`` dev dependency; no INSTALL, no download): three ``dimension`` models with
type 2 history (customer, part, supplier: every tenth member changes on 1995-06-17, so facts
before and after find different versions) and a ``fact`` over lineitem joined with orders, with
three point-in-time lookups at ``o_orderdate``. Setup (two `gristmill run`s: the first data, then
the changed members) is not timed. Timed, each as a whole process (interpreter start included),
alternating ``--repeat`` times, medians printed:

- ``gristmill run -s marts.fct_lineitem --full-refresh``: the fact rebuilt (lookups, staging,
  write into the lake, its checks, the view switch);
- ``bench/transform/fact_raw.py``: one ``CREATE TABLE … AS`` of the same lookups written by hand
  into the same lake (that process never imports Gristmill).

Next to these whole-process figures it prints the in-process ones: the fact's step time from the
run's table of steps against the hand-written statement's own time.

Then both tables are compared row for row (``EXCEPT ALL`` both ways): the ratio counts only if
they are equal.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.transform.measure import Outcome, run

REPO = Path(__file__).parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
GRISTMILL = REPO / ".venv" / "bin" / "gristmill"
CHANGED_AT = "1995-06-17"

SOURCES = """kind: files
tables:
  lineitem: {path: data/lineitem.parquet}
  orders: {path: data/orders.parquet}
  customer: {path: data/customer.parquet}
  part: {path: data/part.parquet}
  supplier: {path: data/supplier.parquet}
"""

MODELS = {
    "dim_customer": """-- kind: dimension
-- key: c_custkey
-- type2: [c_nationkey, c_mktsegment]
-- time: updated_at
select c_custkey, c_name, c_nationkey, c_mktsegment, c_acctbal, updated_at from raw.tpch__customer
""",
    "dim_part": """-- kind: dimension
-- key: p_partkey
-- type2: [p_brand, p_retailprice]
-- time: updated_at
select p_partkey, p_name, p_brand, p_type, p_retailprice, updated_at from raw.tpch__part
""",
    "dim_supplier": """-- kind: dimension
-- key: s_suppkey
-- type2: [s_nationkey]
-- time: updated_at
select s_suppkey, s_name, s_nationkey, s_acctbal, updated_at from raw.tpch__supplier
""",
    "fct_lineitem": """-- kind: fact
-- lookups:
--   customer_key: {dimension: marts.dim_customer, on: c_custkey, at: o_orderdate}
--   part_key: {dimension: marts.dim_part, on: p_partkey, at: o_orderdate}
--   supplier_key: {dimension: marts.dim_supplier, on: s_suppkey, at: o_orderdate}
select l.l_orderkey, l.l_linenumber, o.o_custkey as c_custkey, l.l_partkey as p_partkey,
       l.l_suppkey as s_suppkey, o.o_orderdate, l.l_quantity, l.l_extendedprice, l.l_discount
from raw.tpch__lineitem l join raw.tpch__orders o on l.l_orderkey = o.o_orderkey
""",
}

# every tenth member changes its type 2 columns on CHANGED_AT
CHANGES = {
    "customer": (
        "c_custkey",
        "* replace ((c_nationkey + 1) % 25 as c_nationkey, c_mktsegment || '*' as c_mktsegment)",
    ),
    "part": ("p_partkey", "* replace (p_brand || '*' as p_brand, p_retailprice + 1 as p_retailprice)"),
    "supplier": ("s_suppkey", "* replace ((s_nationkey + 1) % 25 as s_nationkey)"),
}


def generate(root: Path, sf: float) -> None:
    """TPC-H at ``sf`` as Parquet (version 1 of the members), and version 2 of the members."""
    from gristmill._util.duckdb_extensions import connect  # setup only: never inside a timed step

    data = root / "data"
    data.mkdir(parents=True)
    con = connect(extensions=("tpch",))
    con.execute(f"CALL dbgen(sf = {sf})")
    for table in ("lineitem", "orders"):
        con.execute(f"COPY {table} TO '{data / table}.parquet'")
    for table, (key, changed) in CHANGES.items():
        first = f"select *, timestamp '1992-01-01' as updated_at from {table}"
        con.execute(f"COPY ({first}) TO '{root / table}_v1.parquet'")
        second = (
            f"select * from ({first}) where {key} % 10 <> 0 union all "
            f"select {changed.replace('*', '* exclude (updated_at)', 1)}, timestamp '{CHANGED_AT}' "
            f"from ({first}) where {key} % 10 = 0"
        )
        con.execute(f"COPY ({second}) TO '{root / table}_v2.parquet'")
    con.close()


def members(root: Path, version: int) -> None:
    for table in CHANGES:
        (root / "data" / f"{table}.parquet").write_bytes((root / f"{table}_v{version}.parquet").read_bytes())


def project(root: Path) -> Path:
    proj = root / "proj"
    (proj / "sources").mkdir(parents=True)
    (proj / "models" / "marts").mkdir(parents=True)
    (proj / "gristmill.toml").write_text('name = "tpch_star"\n')
    (proj / "sources" / "tpch.yml").write_text(SOURCES)
    for name, sql in MODELS.items():
        (proj / "models" / "marts" / f"{name}.sql").write_text(sql)
    (proj / "data").symlink_to(root / "data")
    return proj


def must(outcome: Outcome, what: str) -> Outcome:
    if not outcome.ok:
        sys.exit(f"{what} failed: {outcome.failure()}\n{outcome.out[-2000:]}{outcome.err[-2000:]}")
    return outcome


def compare(proj: Path) -> tuple[int, int, int]:
    """Rows of the fact, and rows only in the fact / only in the hand-written table."""
    sys.path.insert(0, str(REPO / "bench" / "transform"))
    from fact_raw import connect

    con = connect(proj)
    fact, hand = "marts.fct_lineitem", "bench.fct_lineitem_hand"
    (rows,) = con.execute(f"select count(*) from {fact}").fetchone() or (0,)
    (extra,) = con.execute(f"select count(*) from (from {fact} except all from {hand})").fetchone() or (0,)
    (missing,) = con.execute(f"select count(*) from (from {hand} except all from {fact})").fetchone() or (0,)
    con.close()
    return rows, extra, missing


def step_seconds(outcome: Outcome) -> float:
    """In-process time of the build: the fact's row in `gristmill run`'s table of steps, or the
    hand-written statement's own timer."""
    for line in outcome.out.splitlines():
        if line.startswith("statement seconds:"):
            return float(line.split(":")[1])
        cells = [cell.strip() for cell in line.split("\u2502")]
        if cells[0] == "marts.fct_lineitem":
            return float(cells[4])
    raise SystemExit(f"no step time in the output:\n{outcome.out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sf", type=float, default=0.1, help="TPC-H scale factor (default 0.1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gm-fact-bench-"))
    print(f"TPC-H SF {args.sf:g} in {root}", flush=True)
    generate(root, args.sf)
    proj = project(root)
    members(root, 1)
    must(run([GRISTMILL, "run", "--project", proj], proj), "first run")
    members(root, 2)
    must(run([GRISTMILL, "run", "--project", proj], proj), "second run (changed members)")
    gm_cmd = [GRISTMILL, "run", "-s", "marts.fct_lineitem", "--full-refresh", "--project", proj]
    raw_cmd = [PYTHON, REPO / "bench" / "transform" / "fact_raw.py", proj]
    gm: list[Outcome] = []
    raw: list[Outcome] = []
    for _ in range(args.repeat):
        raw.append(must(run(raw_cmd, proj), "hand-written query"))
        gm.append(must(run(gm_cmd, proj), "gristmill fact build"))
    rows, extra, missing = compare(proj)
    print(f"fact rows: {rows:,}; only in Gristmill's: {extra}, only in the hand-written: {missing}")
    if extra or missing:
        sys.exit("the fact differs from the hand-written query")
    gm_wall, gm_cpu = statistics.median(o.wall for o in gm), statistics.median(o.cpu for o in gm)
    raw_wall, raw_cpu = statistics.median(o.wall for o in raw), statistics.median(o.cpu for o in raw)
    print(f"{'step (whole process, median of ' + str(args.repeat) + ')':<58} {'wall s':>8} {'CPU s':>8}")
    print(f"{'hand-written DuckDB CTAS into the lake':<58} {raw_wall:8.2f} {raw_cpu:8.2f}")
    print(f"{'gristmill run -s marts.fct_lineitem --full-refresh':<58} {gm_wall:8.2f} {gm_cpu:8.2f}")
    print(f"ratio gristmill / hand-written: wall {gm_wall / raw_wall:.2f}x, CPU {gm_cpu / raw_cpu:.2f}x")
    gm_step, raw_step = statistics.median(map(step_seconds, gm)), statistics.median(map(step_seconds, raw))
    print(
        f"in-process (the fact's step / the statement alone, wall s): {gm_step:.2f} / {raw_step:.2f} "
        f"= {gm_step / raw_step:.2f}x"
    )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
