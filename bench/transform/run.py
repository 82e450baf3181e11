"""Transformation benchmark: a layered 300-model project built by raw DuckDB, Gristmill, dbt, SQLMesh.

All four run side by side in one invocation.

    .venv/bin/python -m bench.transform [--models 300] [--repeat 1] [--skip-peers] [--profile]

Every step is a separate process timed by wall clock and by user+sys CPU of its whole process
tree (``RUSAGE_CHILDREN``), each repetition from a fresh copy of the project and an empty
database. Steps: the full build with its tests, a run with nothing changed, loading the project
cold, and a run after one column expression of the staging model with ~190 descendants changed
(which ~40 of them read). dbt and SQLMesh are installed into ``bench/.venv-dbt`` and
``bench/.venv-sqlmesh`` on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.transform import peers
from bench.transform.emit import generate, write_model
from bench.transform.measure import Outcome, Row, run
from bench.transform.spec import Spec, build_spec

REPO = Path(__file__).parents[2]
VENV = REPO / ".venv" / "bin"

Env = dict[str, str | None]

LABELS = {
    "raw": "raw DuckDB -> DuckLake: CTAS + tests",
    "raw_duckcat": "the same, DuckLake catalog in DuckDB not SQLite",
    "raw_file": "the same, into a .duckdb file (no DuckLake)",
    "gm_build": "gristmill run (first: land, build, checks)",
    "gm_noop": "gristmill run (nothing changed)",
    "gm_noop_nopyc": "the same, every module compiled (no .pyc)",
    "gm_plan": "gristmill plan (nothing changed; cold load)",
    "gm_load": "Workspace() only (parse, validate, graph)",
    "gm_change": "gristmill run after the change",
    "gmf_build": "gristmill run (first), storage.format = duckdb",
    "gmf_noop": "gristmill run (nothing changed), duckdb file",
    "gmf_change": "gristmill run after the change, duckdb file",
    "dbt_run": "dbt run (first)",
    "dbt_test": "dbt test",
    "dbt_noop": "dbt run (nothing changed)",
    "dbt_parse": "dbt parse --no-partial-parse (cold load)",
    "dbt_change": "dbt run -s state:modified+ after the change",
    "sm_plan": "sqlmesh plan --auto-apply (first, with audits)",
    "sm_noop": "sqlmesh plan (nothing changed)",
    "sm_run": "sqlmesh run (nothing due)",
    "sm_info": "sqlmesh info (cold load, .cache removed)",
    "sm_change": "sqlmesh plan dev --auto-apply after the change",
}


class Results:
    def __init__(self, *, quiet: bool = False) -> None:
        self.rows: dict[str, Row] = {}
        self.unavailable: dict[str, str] = {}
        self.quiet = quiet

    def add(self, key: str, outcome: Outcome) -> Outcome:
        self.rows.setdefault(key, Row(key, LABELS[key], [])).outcomes.append(outcome)
        if self.quiet:
            return outcome
        status = "ok" if outcome.ok else "FAILED"
        built = f", {outcome.models} models" if outcome.models is not None else ""
        print(f"  {LABELS[key]:<50} {outcome.wall:7.2f} s wall {outcome.cpu:7.2f} s cpu {status}{built}")
        if not outcome.ok:
            print(f"    {outcome.failure()}")
        return outcome

    def get(self, key: str) -> Row | None:
        row = self.rows.get(key)
        return row if row is not None and row.ok else None


# -- the steps -------------------------------------------------------------------------------------


def raw_steps(work: Path, results: Results, env: Env) -> None:
    variants: tuple[tuple[str, list[str | Path]], ...] = (
        ("raw", []),
        ("raw_duckcat", ["--duckdb-catalog"]),
        ("raw_file", ["--file"]),
    )
    for key, flag in variants:
        target = work / key
        command: list[str | Path] = [VENV / "python", Path(__file__).with_name("raw.py"), "raw.json", "data"]
        results.add(key, run([*command, target, *flag], work, env))
        shutil.rmtree(target, ignore_errors=True)


def _gristmill_built(project: Path) -> set[str] | None:
    """The models the project's last run built, from its run history."""
    try:
        db = sqlite3.connect(project / ".gristmill" / "state.sqlite")
        try:
            rows = db.execute(
                "SELECT asset FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)"
                " AND action = 'build' AND kind != 'source' AND status = 'success'"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return {r[0] for r in rows}


def _count(found: set[str] | None) -> int | None:
    return None if found is None else len(found)


def _checks(outcome: Outcome) -> str:
    found = re.search(r"(\d+)/(\d+) checks passed", outcome.out)
    return f"{found.group(1)}/{found.group(2)} checks passed" if found else ""


def gristmill_steps(
    project: Path,
    spec: Spec,
    results: Results,
    env: Env,
    profile: Path | None,
    on_change: Callable[[Path], None],
) -> None:
    gristmill = VENV / "gristmill"
    first = results.add("gm_build", run([gristmill, "run"], project, env))
    first.models = _count(_gristmill_built(project))
    first.note = _checks(first)
    noop = results.add("gm_noop", run([gristmill, "run"], project, env))
    noop.models = _count(_gristmill_built(project))
    compiling = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(project / "no-pyc")}
    nopyc = results.add("gm_noop_nopyc", run([gristmill, "run"], project, compiling))
    nopyc.models = _count(_gristmill_built(project))
    results.add("gm_plan", run([gristmill, "plan"], project, env))
    load = "from gristmill.workspace import Workspace; Workspace('.')"
    results.add("gm_load", run([VENV / "python", "-c", load], project, env))
    if profile is not None:
        for name, args in (("noop", ["run"]), ("plan", ["plan"])):
            out = profile / f"gristmill-{name}.prof"
            run([VENV / "python", "-m", "cProfile", "-o", out, "-m", "gristmill", *args], project, env)
            print(f"    profile of `gristmill {' '.join(args)}` (nothing changed): {out}")
    on_change(project)
    changed = results.add("gm_change", run([gristmill, "run"], project, env))
    built = _gristmill_built(project)
    if built is not None:
        readers = {spec.by_name[n].asset for n in spec.readers(spec.target, spec.column)}
        changed.models = len(built)
        extra = len(built - readers)
        missed = len(readers - built)
        changed.note = f"{len(built & readers)} of them read the column" + (
            f"; {extra} do not" if extra else ""
        )
        if missed:
            changed.note += f"; {missed} readers NOT rebuilt"


def dbt_steps(project: Path, data: Path, results: Results, on_change: Callable[[Path], None]) -> None:
    peers.load_sources(peers.DBT, project, data)
    results.add("dbt_run", peers.dbt(project, "run"))
    test = results.add("dbt_test", peers.dbt(project, "test"))
    test.note = f"{test.models} tests passed" if test.models is not None else ""
    test.models = None
    peers.save_state(project)
    results.add("dbt_noop", peers.dbt(project, "run"))
    results.add("dbt_parse", peers.dbt(project, "parse", "--no-partial-parse"))
    on_change(project)
    results.add("dbt_change", peers.dbt(project, "run", "-s", "state:modified+", "--state", "state"))


def sqlmesh_steps(
    project: Path, data: Path, spec: Spec, results: Results, on_change: Callable[[Path], None]
) -> None:
    peers.load_sources(peers.SQLMESH, project, data)
    first = results.add("sm_plan", peers.sqlmesh(project, "plan", "--auto-apply", "--no-prompts"))
    before = peers.physical_tables(project)
    first.models = len(before)
    noop = results.add("sm_noop", peers.sqlmesh(project, "plan", "--auto-apply", "--no-prompts"))
    noop.models = len(peers.physical_tables(project) - before)
    results.add("sm_run", peers.sqlmesh(project, "run"))
    shutil.rmtree(project / ".cache", ignore_errors=True)
    results.add("sm_info", peers.sqlmesh(project, "info"))
    on_change(project)
    changed = results.add("sm_change", peers.sqlmesh(project, "plan", "dev", "--auto-apply", "--no-prompts"))
    changed.models = len(peers.physical_tables(project) - before)
    category = peers.categorised(changed.out, spec.target)
    changed.note = f"change categorised {category}" if category else ""


# -- the report ------------------------------------------------------------------------------------


def _ratio(a: Row | None, b: Row | None, attr: str) -> float | None:
    """Median of the per-repetition ratios a/b: each pair was measured in the same repetition."""
    if a is None or b is None:
        return None
    pairs = [(getattr(x, attr), getattr(y, attr)) for x, y in zip(a.outcomes, b.outcomes, strict=False)]
    ratios = [x / y for x, y in pairs if y > 0]
    return statistics.median(ratios) if ratios else None


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _sum(results: Results, *keys: str) -> Row | None:
    rows = [results.get(k) for k in keys]
    if any(r is None for r in rows):
        return None
    outcomes = [
        Outcome(sum(o.wall for o in group), sum(o.cpu for o in group), True)
        for group in zip(*(r.outcomes for r in rows if r is not None), strict=True)
    ]
    return Row("+".join(keys), "", outcomes)


def gristmill_file_steps(
    project: Path, spec: Spec, results: Results, env: Env, on_change: Callable[[Path], None]
) -> None:
    """The same project on one DuckDB database file instead of DuckLake: the storage dbt-duckdb
    and SQLMesh use here."""
    toml = project / "gristmill.toml"
    toml.write_text(toml.read_text() + '\n[storage]\nformat = "duckdb"\n')
    gristmill = VENV / "gristmill"
    first = results.add("gmf_build", run([gristmill, "run"], project, env))
    first.models = _count(_gristmill_built(project))
    first.note = _checks(first)
    noop = results.add("gmf_noop", run([gristmill, "run"], project, env))
    noop.models = _count(_gristmill_built(project))
    on_change(project)
    changed = results.add("gmf_change", run([gristmill, "run"], project, env))
    changed.models = _count(_gristmill_built(project))


def report(spec: Spec, results: Results, meta: dict[str, str], repeat: int) -> dict[str, object]:
    counts = {
        layer: sum(m.layer == layer for m in spec.models) for layer in ("staging", "intermediate", "marts")
    }
    readers = spec.readers(spec.target, spec.column)
    downstream = spec.descendants(spec.target)
    print(
        f"\n{len(spec.models)} models ({counts['staging']} staging, {counts['intermediate']} intermediate,"
        f" {counts['marts']} marts; {spec.edges} edges, depth {spec.depth}), {len(spec.models)} tests,"
        f" 4 sources x {spec.rows:,} rows. Change: {spec.target}.{spec.column}"
        f" ({len(downstream)} models downstream, {len(readers) - 1} of them read the column)."
    )
    for name, value in meta.items():
        print(f"{name}: {value}")
    runs = f"median of {repeat} runs" if repeat > 1 else "one run"
    print(f"{runs}; wall and CPU seconds of each step's process tree\n")
    print(f"{'step':<52}{'wall s':>9}{'cpu s':>9}{'models':>8}  note")
    for key, label in LABELS.items():
        row = results.rows.get(key)
        if row is None:
            peer = "dbt" if key.startswith("dbt") else "sqlmesh" if key.startswith("sm") else ""
            if peer in results.unavailable:
                print(f"{label:<52}{'-':>9}{'-':>9}{'':>8}  {results.unavailable[peer]}")
            continue
        models = "" if row.models is None else str(row.models)
        print(f"{label:<52}{row.wall:>9.2f}{row.cpu:>9.2f}{models:>8}  {row.note}")

    g = results.get
    build, raw = g("gm_build"), g("raw")
    noop, plan, change = g("gm_noop"), g("gm_plan"), g("gm_change")
    print(f"\n{'target':<40}{'measured':>22}  {'goal':<32}")

    def target(label: str, measured: str, goal: str, ok: bool) -> None:
        print(f"{label:<40}{measured:>22}  {goal:<32}{'met' if ok else 'MISSED'}")

    wall, cpu = _ratio(build, raw, "wall"), _ratio(build, raw, "cpu")
    if wall is not None and cpu is not None:
        measured = f"{wall:.3f}x wall, {cpu:.3f}x cpu"
        target("full build + checks vs raw (DuckLake)", measured, "<= 1.15x", max(wall, cpu) <= 1.15)
    fbuild, fraw = g("gmf_build"), g("raw_file")
    wall, cpu = _ratio(fbuild, fraw, "wall"), _ratio(fbuild, fraw, "cpu")
    if wall is not None and cpu is not None:
        measured = f"{wall:.3f}x wall, {cpu:.3f}x cpu"
        target("the same, both on a .duckdb file", measured, "<= 1.15x", max(wall, cpu) <= 1.15)
    if noop:
        target("no-op run", f"{noop.cpu:.2f} CPU-s", "<= 0.5 CPU-s", noop.cpu <= 0.5)
    if plan:
        target("cold load (gristmill plan)", f"{plan.cpu:.2f} CPU-s", "<= 1 CPU-s", plan.cpu <= 1)
    if change and change.models is not None:
        goal = f"{len(readers)} (edited + {len(readers) - 1} readers)"
        target("rebuilt after the one-column change", f"{change.models}", goal, change.models <= len(readers))
    comparisons = {
        "full build + tests": ("gm_build", ("dbt_run", "dbt_test"), ("sm_plan",)),
        "full build + tests, Gristmill on a .duckdb file": (
            "gmf_build",
            ("dbt_run", "dbt_test"),
            ("sm_plan",),
        ),
        "nothing changed": ("gm_noop", ("dbt_noop",), ("sm_noop",)),
        "cold load": ("gm_plan", ("dbt_parse",), ("sm_info",)),
        "one-column change": ("gm_change", ("dbt_change",), ("sm_change",)),
        "one-column change, Gristmill on a .duckdb file": ("gmf_change", ("dbt_change",), ("sm_change",)),
    }
    summary: dict[str, object] = {}
    if results.rows.keys() & {"dbt_run", "sm_plan"}:
        print(
            "\nGristmill / peer (below 1: Gristmill cheaper)    vs dbt (cpu, wall)    vs SQLMesh (cpu, wall)"
        )
        for label, (ours, theirs_dbt, theirs_sm) in comparisons.items():
            mine, d, s = g(ours), _sum(results, *theirs_dbt), _sum(results, *theirs_sm)
            print(
                f"  {label:<50}{_x(_ratio(mine, d, 'cpu')):>8}{_x(_ratio(mine, d, 'wall')):>8}"
                f"{_x(_ratio(mine, s, 'cpu')):>14}{_x(_ratio(mine, s, 'wall')):>8}"
            )
    for key, row in results.rows.items():
        summary[key] = {
            "label": row.label,
            "wall": [round(o.wall, 3) for o in row.outcomes],
            "cpu": [round(o.cpu, 3) for o in row.outcomes],
            "models": row.models,
            "note": row.note,
        }
    return summary


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="300",
        help="models in the project; a list (100,300,600,1000,2000) measures the build's growth only",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows per source table")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; the table shows medians")
    parser.add_argument("--skip-peers", action="store_true", help="Gristmill against raw DuckDB only")
    parser.add_argument("--peers", default="dbt,sqlmesh", help="which peers to run (default: both)")
    parser.add_argument("--threads", type=int, default=4, help="dbt threads / SQLMesh concurrent_tasks")
    parser.add_argument("--profile", action="store_true", help="cProfile Gristmill's no-op run and plan")
    parser.add_argument("--workdir", type=Path, help="keep the projects here (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument(
        "--skip-warm-up", action="store_true", help="no untimed 12-model run first (compiles bytecode)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="with a --models list: also build with this gristmill/ source folder"
    )
    args = parser.parse_args()

    sizes = [int(size) for size in str(args.models).split(",") if size]
    spec = build_spec(sizes[0], args.rows)
    chosen = [] if args.skip_peers else [p for p in args.peers.split(",") if p]
    results = Results()
    meta = {"gristmill": "duckdb " + _version("duckdb") + " + sqlglot " + _version("sqlglot")}
    for name in chosen:
        problem = peers.ensure(peers.PEERS[name])
        if problem:
            results.unavailable[name] = f"not run: {problem}"
            print(f"[setup] {name} cannot run: {problem}")
        else:
            meta[name] = peers.versions(peers.PEERS[name])
    chosen = [p for p in chosen if p not in results.unavailable]
    meta["cpu"] = f"{os.cpu_count()} cores"

    keep = args.workdir is not None
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gristmill-transform-"))
    if keep and work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty")
    # Python modules run from compiled bytecode, as for an installed tool: the peers' venvs hold it
    # (pip compiles on install); for the repo venv it is cached under the work folder.
    env: Env = {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    # Others may edit the checkout while this runs: every step runs the code as it was at the start.
    shutil.copytree(
        REPO / "gristmill", work / "src" / "gristmill", ignore=shutil.ignore_patterns("__pycache__")
    )
    env["PYTHONPATH"] = str(work / "src")
    meta["gristmill"] += f" (source snapshot of {REPO / 'gristmill'} at {time.strftime('%Y-%m-%d %H:%M')})"
    generate(work / "template", spec, threads=args.threads)
    if not args.skip_warm_up:
        print("[setup] warm-up on a 12-model project (bytecode, file cache) ...", flush=True)
        tiny = build_spec(12, 1_000)
        generate(work / "warm-up", tiny, threads=args.threads)
        repetition(work / "warm-up", tiny, Results(quiet=True), env, chosen, None)
        shutil.rmtree(work / "warm-up", ignore_errors=True)
    if "," in str(args.models):  # a list, even of one size ("2000,"): the growth curve
        from bench.transform.curve import curve

        found = curve(
            sizes,
            work,
            {**env, "GRISTMILL_VENV": str(VENV)},
            rows=args.rows,
            threads=args.threads,
            dbt="dbt" in chosen,
            repeat=args.repeat,
            baseline=_snapshot(args.baseline, work / "baseline-src") if args.baseline else None,
        )
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "curve": found}, indent=1))
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    loads = [os.getloadavg()[0]]
    print(f"projects in {work / 'template'}; load average {loads[0]:.2f}")
    try:
        for rep in range(args.repeat):
            print(f"\nrepetition {rep + 1} of {args.repeat}")
            copy = work / f"rep{rep + 1}"
            shutil.copytree(work / "template", copy)
            profile = work if args.profile and rep == 0 else None
            loads += repetition(copy, spec, results, env, chosen, profile)
            if not keep:
                shutil.rmtree(copy, ignore_errors=True)
        meta["load average (1 min) during the run"] = (
            f"{min(loads):.1f}-{max(loads):.1f} (sampled {len(loads)} times)"
        )
        summary = report(spec, results, meta, args.repeat)
        if args.profile:
            _print_profiles(work)
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "steps": summary}, indent=1))
    finally:
        if not keep and not args.profile:
            shutil.rmtree(work, ignore_errors=True)


def repetition(
    copy: Path, spec: Spec, results: Results, env: Env, chosen: list[str], profile: Path | None
) -> list[float]:
    """Every step once, each tool in its own copy of the project; returns load averages seen."""

    def change(tool: str) -> Callable[[Path], None]:
        def edit(project: Path) -> None:
            write_model(tool, project, spec, spec.by_name[spec.target], changed=True)

        return edit

    loads = []
    raw_steps(copy, results, env)
    loads.append(os.getloadavg()[0])
    shutil.copytree(copy / "gristmill", copy / "gristmill-file")
    gristmill_steps(copy / "gristmill", spec, results, env, profile, change("gristmill"))
    loads.append(os.getloadavg()[0])
    gristmill_file_steps(copy / "gristmill-file", spec, results, env, change("gristmill"))
    loads.append(os.getloadavg()[0])
    if "dbt" in chosen:
        dbt_steps(copy / "dbt", copy / "data", results, change("dbt"))
        loads.append(os.getloadavg()[0])
    if "sqlmesh" in chosen:
        sqlmesh_steps(copy / "sqlmesh", copy / "data", spec, results, change("sqlmesh"))
        loads.append(os.getloadavg()[0])
    return loads


def _snapshot(package: Path, into: Path) -> Path:
    """A copy of a ``gristmill`` package folder; returns the folder to put on PYTHONPATH."""
    shutil.copytree(package, into / "gristmill", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def _version(distribution: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(distribution)


def _print_profiles(work: Path) -> None:
    import pstats

    for name in ("noop", "plan"):
        path = work / f"gristmill-{name}.prof"
        if path.exists():
            print(f"\n== cProfile: gristmill {name}, top 25 by cumulative time ({path}) ==")
            pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
