"""The TPC-H project on Spark local[2]: raw ``spark.sql``, Gristmill, dbt-spark; and on DuckDB.

    .venv/bin/python -m bench.engines.spark_transform [--sf 1] [--repeat 1] [--skip-dbt]
        [--skip-duckdb] [--threads 2] [--memory 2g] [--timeout 1800]

The project is ``bench/engines/spark_tpch.py``'s: TPC-H at ``--sf`` (Parquet made once by DuckDB's
packaged ``tpch`` extension), 8 ``files`` sources, 8 staging views, a dimensional model (3
dimensions, 2 facts) and the marts of TPC-H Q1, Q3, Q5 and Q10, written in DuckDB SQL. Built by:

- **raw** (``bench/engines/spark_raw.py``, a process that never imports Gristmill): one Spark
  session on ``local[2]`` with the conf a Gristmill ``spark`` target's session gets; the sources
  land as ``CREATE TABLE … USING parquet AS SELECT * FROM parquet.`file```, then each model's
  SELECT, as ``gristmill compile --dialect spark`` renders it, as a ``CREATE VIEW``/``CREATE
  TABLE … USING parquet AS``, one ``spark.sql`` each, in dependency order;
- **Gristmill on Spark**: ``gristmill run --target big`` (``engine = "spark"``, ``master =
  "local[2]"``), first build and a rerun with nothing changed;
- **dbt-spark** (``bench/.venv-dbt-spark``, installed on first use: dbt-core 1.11, dbt-spark, and
  pyspark 4.3.0 as Gristmill's): ``method: session`` (a Spark session in dbt's process) on
  ``local[2]`` with the same conf, the same Spark SQL with ``ref``/``source``; its sources are
  landed beforehand by the raw script (untimed), as dbt expects them to exist; ``dbt run`` twice
  (dbt has no no-op: the second run builds everything again);
- **Gristmill on DuckDB**: ``gristmill run`` on the project's default ``duckdb`` target (2
  threads), first build and nothing changed.

Every step is a process timed by wall clock and by user+sys CPU of its whole process tree, the
JVM included (``bench/engines/spark_measure.py``: this process is the subreaper of what it
starts and waits for every process of the tree). Each tool has its own warehouse and metastore
folder. At the end the four marts of every tool are compared (row count and total per mart).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.engines import spark_measure
from bench.engines.spark_measure import run
from bench.engines.spark_tpch import (
    TABLES,
    data_folder,
    dbt_project,
    gristmill_project,
    models,
    parse_compiled,
)
from bench.transform import peers
from bench.transform.measure import Outcome, Row

REPO = Path(__file__).parents[2]
VENV = REPO / ".venv" / "bin"
RAW = Path(__file__).with_name("spark_raw.py")
MASTER = "local[2]"
SPARK_ENGINE = Path("gristmill") / "engines" / "spark" / "engine.py"

# dbt-core 1.11 is the last line installable from the package registry alone (bench/transform/peers.py);
# dbt-spark's session mode imports pyspark, which dbt-spark leaves to the user: Gristmill's version.
DBT_SPARK = peers.Peer(
    "dbt-spark",
    "dbt",
    peers.BENCH / ".venv-dbt-spark",
    ("dbt-core>=1.11,<1.12", "dbt-spark>=1.10", "pyspark==4.3.0"),
    ("dbt-core", "dbt-spark", "pyspark"),
)

LABELS = {
    "raw_build": "raw spark.sql: land 8 sources, 17 models",
    "gm_build": "gristmill run -t big (spark), first",
    "gm_noop": "gristmill run -t big, nothing changed",
    "dbt_run": "dbt run (dbt-spark session), first",
    "dbt_noop": "dbt run, again (nothing changed)",
    "duck_build": "gristmill run (duckdb), first",
    "duck_noop": "gristmill run (duckdb), nothing changed",
}

# (mart, its main measure): row count and rounded total, compared across the tools
FINGERPRINTS = {
    "q1_pricing_summary": "sum_charge",
    "q3_shipping_priority": "revenue",
    "q5_local_supplier_volume": "revenue",
    "q10_returned_items": "revenue",
}


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.phases: dict[str, list[tuple[float, float]]] = {}
        """Per build step and round: seconds landing the sources, seconds building the models
        (inside the process: the raw script's clocks, Gristmill's run history)."""

    def phase(self, key: str, which: int) -> float | None:
        found = [p[which] for p in self.phases.get(key, [])]
        return statistics.median(found) if found and self.get(key) else None

    def add(self, key: str, outcome: Outcome, note: str = "") -> Outcome:
        if note:
            outcome.note = f"{note}; {outcome.note}" if outcome.note else note
        self.rows.setdefault(key, Row(key, LABELS[key], [])).outcomes.append(outcome)
        status = "ok" if outcome.ok else "FAILED: " + outcome.failure()
        built = f", {outcome.models} models" if outcome.models is not None else ""
        print(
            f"  {LABELS[key]:<44} {outcome.wall:8.2f} s wall {outcome.cpu:8.2f} s cpu {status}{built}",
            flush=True,
        )
        return outcome

    def get(self, key: str) -> Row | None:
        row = self.rows.get(key)
        return row if row is not None and row.ok else None


# -- setup -----------------------------------------------------------------------------------------


def spark_conf(project: Path, folder: Path) -> dict[str, str]:
    """The conf of the ``big`` target's session (``gristmill/engines/spark/session.py``), with its
    warehouse and metastore in ``folder`` instead of the project's."""
    from gristmill.config.targets import choose
    from gristmill.engines.spark.session import plan_session, spark_folder
    from gristmill.project.settings_file import load_settings

    settings = choose(load_settings(project), "big")
    plan = plan_session(settings, project)
    own = str(spark_folder(settings, project).resolve())
    return {key: value.replace(own, str(folder)) for key, value in plan.conf.items()}


def compile_spark(project: Path, env: dict[str, str | None]) -> dict[str, str]:
    """Each model's Spark SQL as Gristmill renders it (``gristmill compile --dialect spark``)."""
    environment = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    done = subprocess.run(
        [VENV / "gristmill", "compile", "--dialect", "spark"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"gristmill compile --dialect spark failed:\n{done.stdout}{done.stderr}")
    compiled = parse_compiled(done.stdout)
    missing = [m.asset for m in models() if m.asset not in compiled]
    if missing:
        raise SystemExit(f"gristmill compile gave no SQL for {', '.join(missing)}")
    return compiled


def write_plan(path: Path, data: Path, compiled: dict[str, str], conf: dict[str, str]) -> None:
    plan = {
        "master": MASTER,
        "conf": conf,
        "sources": {f"tpch__{t}": str(data / f"{t}.parquet") for t in TABLES},
        "models": [
            {"name": m.asset, "schema": m.schema, "kind": m.kind, "sql": compiled[m.asset]} for m in models()
        ],
    }
    path.write_text(json.dumps(plan, indent=1))


# -- steps -----------------------------------------------------------------------------------------


def built_by_gristmill(project: Path, target: str) -> int:
    db = sqlite3.connect(project / ".gristmill" / "targets" / target / "state.sqlite")
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)"
            " AND action = 'build' AND kind != 'source' AND status = 'success'"
        ).fetchone()
    finally:
        db.close()
    return int(count)


def phases_of(project: Path, target: str) -> tuple[float, float]:
    """The last run's span of source loads and span of model builds, from its steps' start and
    finish times (a run lands every source before it builds the models that read them)."""
    db = sqlite3.connect(project / ".gristmill" / "targets" / target / "state.sqlite")
    try:
        rows = db.execute(
            "SELECT kind = 'source', min(started_at), max(finished_at) FROM steps"
            " WHERE run_id = (SELECT max(run_id) FROM runs) AND action = 'build' GROUP BY 1"
        ).fetchall()
    finally:
        db.close()
    spans = {
        bool(k): (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() for k, a, b in rows
    }
    return spans.get(True, 0.0), spans.get(False, 0.0)


def seconds_of(outcome: Outcome, what: str) -> float | None:
    for line in outcome.out.splitlines():
        if line.startswith(f"{what} seconds:"):
            return float(line.split(":")[1])
    return None


def raw_step(folder: Path, results: Results, env: dict[str, str | None]) -> None:
    outcome = run([VENV / "python", RAW, "raw.json"], folder, env)
    landed, built = seconds_of(outcome, "sources"), seconds_of(outcome, "models")
    outcome.models = len(models()) if outcome.ok else None
    note = ""
    if outcome.ok and landed is not None and built is not None:
        note = f"in session: sources {landed:.1f} s, models {built:.1f} s"
        results.phases.setdefault("raw_build", []).append((landed, built))
    results.add("raw_build", outcome, note)


def gristmill_steps(project: Path, target: str, keys: tuple[str, str], results: Results, env: dict) -> None:
    for key in keys:
        outcome = run([VENV / "gristmill", "run", "--target", target], project, env)
        note = ""
        if outcome.ok:
            outcome.models = built_by_gristmill(project, target)
            if outcome.models:
                landed, built = phases_of(project, target)
                note = f"in run: sources {landed:.1f} s, models {built:.1f} s"
                results.phases.setdefault(key, []).append((landed, built))
        results.add(key, outcome, note)


def dbt(project: Path, *args: str) -> Outcome:
    command: list[str | Path] = [DBT_SPARK.exe("dbt"), *args, "--project-dir", ".", "--profiles-dir", "."]
    outcome = run(command, project, env={**peers.DBT_ENV, "SPARK_LOCAL_IP": "127.0.0.1"})
    found = project / "target" / "run_results.json"
    if found.exists():
        done = json.loads(found.read_text())["results"]
        outcome.models = sum(1 for r in done if r["status"] == "success")
        bad = [r for r in done if r["status"] != "success"]
        if bad:
            outcome.ok = False
            outcome.err = f"{len(bad)} failed, first: {bad[0]['unique_id']}: {bad[0].get('message')}"
    return outcome


def dbt_steps(project: Path, results: Results) -> None:
    setup = run(
        [VENV / "python", RAW, "raw.json", "--sources-only"], project, {"SPARK_LOCAL_IP": "127.0.0.1"}
    )
    if not setup.ok:
        raise SystemExit(f"landing dbt's sources failed:\n{setup.err[-3000:]}")
    results.add("dbt_run", dbt(project, "run"))
    results.add("dbt_noop", dbt(project, "run"))


# -- results ---------------------------------------------------------------------------------------


def fingerprint_sql(source: str) -> str:
    """One row per mart: its name, rows and rounded main measure; ``source`` maps a mart to what
    to read."""
    parts = [
        f"select '{mart}' as mart, count(*) as rows, round(sum(cast({measure} as double)), 2) as total"
        f" from {source.format(mart=mart)}"
        for mart, measure in FINGERPRINTS.items()
    ]
    return " union all ".join(parts) + " order by mart"


def warehouse_marts(folder: Path) -> list[tuple[str, int, float]]:
    import duckdb

    warehouse = folder / "warehouse" / "marts.db"
    query = fingerprint_sql(f"read_parquet('{warehouse}/{{mart}}/*.parquet')")
    return [(str(m), int(r), float(t)) for m, r, t in duckdb.sql(query).fetchall()]


def gristmill_marts(project: Path, target: str, env: dict[str, str | None]) -> list[tuple[str, int, float]]:
    environment = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    done = subprocess.run(
        [VENV / "gristmill", "query", fingerprint_sql("marts.{mart}"), "-f", "json", "--target", target],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr or done.stdout).strip().splitlines()[-1])
    text = done.stdout[done.stdout.index("[") :]
    return [(str(r["mart"]), int(r["rows"]), float(r["total"])) for r in json.loads(text)]


def _ratio(a: Row | None, b: Row | None, attr: str) -> float | None:
    if a is None or b is None:
        return None
    value = getattr(b, attr)
    return getattr(a, attr) / value if value > 0 else None


def _wall(row: Row | None) -> float | None:
    return row.wall if row is not None else None


def _sum(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(results: Results, meta: dict[str, str], marts: dict[str, object]) -> None:
    print()
    for name, value in meta.items():
        print(f"{name}: {value}")
    print(f"\n{'step':<46}{'wall s':>9}{'cpu s':>9}{'models':>8}  note")
    for key, label in LABELS.items():
        row = results.rows.get(key)
        if row is not None:
            models_built = "" if row.models is None else str(row.models)
            print(f"{label:<46}{row.wall:>9.2f}{row.cpu:>9.2f}{models_built:>8}  {row.note}")
        elif key.startswith("gm_"):
            print(f"{label:<46}{'not measured yet':>18}")
    g = results.get
    lines: list[tuple[str, float | None, float | None]] = [
        ("gristmill spark build / raw, wall", _ratio(g("gm_build"), g("raw_build"), "wall"), 1.15),
        ("gristmill spark build / raw, cpu", _ratio(g("gm_build"), g("raw_build"), "cpu"), None),
        (
            "  the models alone (in process) / raw's",
            _div(results.phase("gm_build", 1), results.phase("raw_build", 1)),
            None,
        ),
        (
            "  the sources alone (in process) / raw's",
            _div(results.phase("gm_build", 0), results.phase("raw_build", 0)),
            None,
        ),
        ("gristmill spark build / dbt-spark run, wall", _ratio(g("gm_build"), g("dbt_run"), "wall"), None),
        ("gristmill spark build / dbt-spark run, cpu", _ratio(g("gm_build"), g("dbt_run"), "cpu"), None),
        (
            "gristmill spark build / (dbt run + raw's landing)",
            _div(_wall(g("gm_build")), _sum(_wall(g("dbt_run")), results.phase("raw_build", 0))),
            None,
        ),
        ("gristmill spark no-op / dbt-spark rerun, wall", _ratio(g("gm_noop"), g("dbt_noop"), "wall"), None),
        ("gristmill spark no-op / dbt-spark rerun, cpu", _ratio(g("gm_noop"), g("dbt_noop"), "cpu"), None),
        ("dbt-spark run / raw, wall", _ratio(g("dbt_run"), g("raw_build"), "wall"), None),
        ("gristmill duckdb build / raw spark, wall", _ratio(g("duck_build"), g("raw_build"), "wall"), None),
        (
            "gristmill duckdb build / gristmill spark, wall",
            _ratio(g("duck_build"), g("gm_build"), "wall"),
            None,
        ),
    ]
    print(f"\n{'ratio (measured in this run)':<48}{'measured':>10}  target")
    for label, ratio, goal in lines:
        verdict = ""
        if goal is not None and ratio is not None:
            verdict = f"<= {goal}x " + ("met" if ratio <= goal else "MISSED")
        shown = "n/a" if ratio is None else f"{ratio:.2f}x"
        print(f"{label:<48}{shown:>10}  {verdict}")
    print("\nmarts (rows, total of the main measure) per tool:")
    for tool, found in marts.items():
        print(f"  {tool:<18} {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sf", type=float, default=1.0, help="TPC-H scale factor (default 1; 0.1 for a look)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds, the tools alternating (medians)")
    parser.add_argument("--threads", type=int, default=2, help="dbt threads")
    parser.add_argument("--memory", default="2g", help="the Spark driver's memory, every tool (default 2g)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a step may take (default 1800)")
    parser.add_argument("--skip-dbt", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep the projects here (default: a temp folder)")
    args = parser.parse_args()

    spark_measure.step_timeout = args.timeout
    data = data_folder(args.sf)
    results = Results()
    meta = {
        "data": f"TPC-H SF {args.sf:g}, 8 Parquet files in {data}",
        "machine": f"{os.cpu_count()} cores, {_memory()}",
        "spark": f"pyspark {_version('pyspark')}, master {MASTER}, driver memory {args.memory}",
    }
    use_dbt = not args.skip_dbt
    if use_dbt:
        problem = peers.ensure(DBT_SPARK)
        if problem:
            print(f"[setup] dbt-spark cannot run: {problem}")
            use_dbt = False
        else:
            meta["dbt"] = peers.versions(DBT_SPARK) + f", method session, threads {args.threads}"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gristmill-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env: dict[str, str | None] = {
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    # Every step runs the code as it was at the start, whatever others edit meanwhile.
    shutil.copytree(
        REPO / "gristmill", work / "src" / "gristmill", ignore=shutil.ignore_patterns("__pycache__")
    )
    env["PYTHONPATH"] = str(work / "src")
    meta["gristmill"] = f"source snapshot of {REPO / 'gristmill'} at {time.strftime('%Y-%m-%d %H:%M')}"
    spark_ready = (work / "src" / SPARK_ENGINE).exists()
    if not spark_ready:
        meta["gristmill on spark"] = f"not measured yet: {SPARK_ENGINE} is not in this checkout"
    spark = {"master": f'"{MASTER}"', "memory_limit": f'"{args.memory}"'}
    marts: dict[str, object] = {}
    loads = [os.getloadavg()[0]]
    try:
        compiled: dict[str, str] | None = None
        for round_ in range(args.repeat):
            tag = f"-{round_}" if args.repeat > 1 else ""
            project = gristmill_project(work / f"gristmill{tag}", data, spark=spark)
            compiled = compiled or compile_spark(project, env)
            (work / f"raw{tag}").mkdir()
            conf = spark_conf(project, work / f"raw{tag}" / "spark")
            write_plan(work / f"raw{tag}" / "raw.json", data, compiled, conf)
            print(f"\nround {round_ + 1} of {args.repeat}", flush=True)
            raw_step(work / f"raw{tag}", results, env)
            loads.append(os.getloadavg()[0])
            if spark_ready:
                gristmill_steps(project, "big", ("gm_build", "gm_noop"), results, env)
                loads.append(os.getloadavg()[0])
            if use_dbt:
                folder = work / f"dbt{tag}"
                dbt_conf = spark_conf(project, folder / "spark")
                dbt_project(folder, compiled, master=MASTER, conf=dbt_conf, threads=args.threads)
                write_plan(folder / "raw.json", data, compiled, dbt_conf)
                dbt_steps(folder, results)
                loads.append(os.getloadavg()[0])
            if not args.skip_duckdb:
                gristmill_steps(project, "local", ("duck_build", "duck_noop"), results, env)
                loads.append(os.getloadavg()[0])
        last = f"-{args.repeat - 1}" if args.repeat > 1 else ""
        marts["raw spark.sql"] = _try(lambda: warehouse_marts(work / f"raw{last}" / "spark"))
        if use_dbt:
            marts["dbt-spark"] = _try(lambda: warehouse_marts(work / f"dbt{last}" / "spark"))
        if spark_ready:
            marts["gristmill spark"] = _try(lambda: gristmill_marts(work / f"gristmill{last}", "big", env))
        if not args.skip_duckdb:
            marts["gristmill duckdb"] = _try(lambda: gristmill_marts(work / f"gristmill{last}", "local", env))
        meta["load average (1 min) during the run"] = f"{min(loads):.1f}-{max(loads):.1f}"
        meta["timing"] = (
            "each step a process; wall until its whole tree exited, user+sys CPU of the tree (JVM included)"
        )
        report(results, meta, marts)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _try(action):  # type: ignore[no-untyped-def]
    try:
        return action()
    except Exception as err:  # a tool that failed leaves no marts: say so in the table
        return f"cannot read: {str(err).splitlines()[0][:120]}"


def _memory() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{pages / 2**30:.0f} GiB RAM"


def _version(distribution: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(distribution)


if __name__ == "__main__":
    main()
