"""Orchestration benchmark: framework overhead per task on 200 no-op assets, and planning 2,000.

    .venv/bin/python -m bench.orchestration [--skip-peers] [--repeat N]

The DAG (``dag.py``): 20 layers x 10 nodes, each node of a layer after the first depending on 2 or
3 nodes of the layer before, braided. Measured on it, each configuration in a fresh process,
``--repeat`` times round-robin (medians): a plain graphlib loop with and without the run-history
writes (the floor), Gristmill's task runner writing a real SQLite run history, Dagster's
``materialize()`` on an on-disk SQLite instance and an in-memory one (its own venv), and
``gristmill run`` on a project of 200 one-row table models braided the same way through their SQL
(first run and nothing changed; the engine's work included). Then a 2,000-model project (200
layers x 10) is planned by ``gristmill plan`` and in-process by ``Workspace(root).plan()``, cold
(nothing cached) and warm (parses cached in the state store).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.orchestration import dag, dagster_peer
from bench.transform.measure import Outcome, run

REPO = Path(__file__).parents[2]
WORK = REPO / "bench" / ".work-orchestration"
MARKER = ".orchestration-bench"
PYTHON = REPO / ".venv" / "bin" / "python"
GRISTMILL = REPO / ".venv" / "bin" / "gristmill"
HERE = Path(__file__).parent
PLAN_LAYERS = 200

Env = dict[str, str | None]


@dataclass
class Measured:
    cpu: float
    wall: float
    tasks: int | None
    problem: str = ""
    parsed: int | None = None


@dataclass
class Config:
    key: str
    label: str
    measure: Callable[[], Measured]
    group: str = "dag"
    runs: list[Measured] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return bool(self.runs) and all(not m.problem for m in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(m.cpu for m in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(m.wall for m in self.runs)


# -- measuring one configuration ------------------------------------------------------------------


def _answer(outcome: Outcome) -> dict[str, Any]:
    """The JSON a measuring script printed last, or {} when it failed."""
    lines = outcome.out.strip().splitlines()
    try:
        return json.loads(lines[-1]) if outcome.ok and lines else {}
    except json.JSONDecodeError:
        return {}


def _expect(found: object, wanted: object, what: str) -> str:
    return "" if found == wanted else f"{what}: {found} (expected {wanted})"


def _reported(found: dict[str, Any], tasks: int | None, problem: str, parsed: int | None = None) -> Measured:
    return Measured(float(found["cpu_s"]), float(found["wall_s"]), tasks, problem, parsed)


def in_process(mode: str, work: Path, env: Env, tasks: int) -> Measured:
    """One ``gristmill_runner.py`` configuration; CPU and wall as the script measured them."""
    script = HERE / "gristmill_runner.py"
    outcome = run([PYTHON, script, mode, str(dag.LAYERS), str(dag.WIDTH), work / "tmp"], work, env)
    found = _answer(outcome)
    if not found:
        return Measured(outcome.cpu, outcome.wall, None, outcome.failure())
    return _reported(found, found["tasks"], _expect(found["tasks"], tasks, "tasks done"))


def dagster(mode: str, work: Path, tasks: int) -> Measured:
    """One ``materialize()``; checks that every asset materialized into the intended storage."""
    outcome = dagster_peer.materialize(mode, dag.LAYERS, dag.WIDTH, work / "tmp")
    found = _answer(outcome)
    if not found:
        return Measured(outcome.cpu, outcome.wall, None, outcome.failure())
    storage = "SqliteEventLogStorage" if mode == "sqlite" else "InMemoryEventLogStorage"
    problem = (
        _expect(found["tasks"], tasks, "materialized")
        or _expect(found["runs_stored"], 1, "runs stored")
        or _expect(found["event_log"], storage, "event log storage")
    )
    return _reported(found, found["tasks"], problem)


def built(project: Path) -> int | None:
    """Models the project's last run built, from its run history."""
    try:
        db = sqlite3.connect(project / ".gristmill" / "state.sqlite")
        try:
            row = db.execute(
                "SELECT count(*) FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)"
                " AND action = 'build' AND status = 'success'"
            ).fetchone()
            return int(row[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


def gristmill_run(template: Path, project: Path, env: Env, *, first: bool, tasks: int) -> Measured:
    """``gristmill run`` as a process: ``first`` on a fresh copy of the project, else again on the
    copy the last first run built (nothing changed)."""
    if first or not project.exists():
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(template, project)
        if not first:
            run([GRISTMILL, "run"], project, env)
    outcome = run([GRISTMILL, "run"], project, env)
    count = built(project)
    problem = "" if outcome.ok else outcome.failure()
    return Measured(
        outcome.cpu, outcome.wall, count, problem or _expect(count, tasks if first else 0, "built")
    )


def plan_cli(project: Path, env: Env, *, cold: bool, models: int) -> Measured:
    """``gristmill plan`` as a process; ``cold`` without the state store (nothing cached)."""
    _prepare_plan(project, env, cold=cold)
    outcome = run([GRISTMILL, "plan"], project, env)
    return Measured(
        outcome.cpu, outcome.wall, models if outcome.ok else None, "" if outcome.ok else outcome.failure()
    )


def plan_in_process(project: Path, env: Env, *, cold: bool, models: int) -> Measured:
    """``Workspace(root).plan()`` timed inside a fresh process, after its imports."""
    _prepare_plan(project, env, cold=cold)
    outcome = run([PYTHON, HERE / "plan_inprocess.py", project], project, env)
    found = _answer(outcome)
    if not found:
        return Measured(outcome.cpu, outcome.wall, None, outcome.failure())
    parsed = found["parsed"]
    problem = _expect(found["models"], models, "planned") or _expect(parsed, models if cold else 0, "parsed")
    return _reported(found, models, problem, parsed)


def _prepare_plan(project: Path, env: Env, *, cold: bool) -> None:
    state = project / ".gristmill"
    if cold:
        shutil.rmtree(state, ignore_errors=True)
    elif not state.exists():
        run([GRISTMILL, "plan"], project, env)  # a warm plan needs the cache a first plan leaves


# -- setup -----------------------------------------------------------------------------------------


def _fresh(work: Path) -> None:
    if work.exists():
        if any(work.iterdir()) and not (work / MARKER).exists():
            sys.exit(f"{work} exists and was not made by this benchmark; remove it or pass another --workdir")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / MARKER).write_text("made by python -m bench.orchestration; deleted at its next run\n")


def snapshot(work: Path) -> Env:
    """A copy of ``gristmill/`` as it is now, and the environment that runs it (bytecode cached under
    the work folder): others may edit the checkout while this runs. ``bench`` comes from the
    checkout, after the copy."""
    shutil.copytree(
        REPO / "gristmill", work / "src" / "gristmill", ignore=shutil.ignore_patterns("__pycache__")
    )
    return {
        "PYTHONPATH": f"{work / 'src'}{os.pathsep}{REPO}",
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
    }


def setup(args: argparse.Namespace, work: Path) -> tuple[list[Config], dict[str, str]]:
    _fresh(work)
    env = snapshot(work)
    meta = {
        "cpu": f"{os.cpu_count()} cores",
        "gristmill": f"source snapshot of {REPO / 'gristmill'} at {time.strftime('%Y-%m-%d %H:%M')}",
    }
    graph = dag.nodes()
    tasks = len(graph)
    template = work / "project-200"
    dag.write_project(template)
    project = work / "run-200"
    plan_project = work / "plan-2000"
    models = dag.write_project(plan_project, PLAN_LAYERS)
    edges = sum(len(u) for u in graph.values())
    meta["dag"] = f"{dag.LAYERS} layers x {dag.WIDTH}: {tasks} tasks, {edges} edges"
    meta["plan"] = f"{PLAN_LAYERS} layers x {dag.WIDTH}: {models} models"
    configs = [
        Config("floor", "graphlib loop, no history (floor)", lambda: in_process("floor", work, env, tasks)),
        Config(
            "floor_history",
            "graphlib loop + SQLite run history",
            lambda: in_process("floor_history", work, env, tasks),
        ),
    ]
    if (work / "src" / "gristmill" / "runtime" / "run" / "runner.py").exists():
        configs.append(
            Config(
                "runner",
                "Gristmill Runner (4 threads) + SQLite run history",
                lambda: in_process("runner", work, env, tasks),
            )
        )
    else:
        print("[setup] gristmill/runtime/run/runner.py does not exist yet: the runner is left out")
    if not args.skip_peers:
        problem, version = dagster_peer.setup()
        if problem:
            print(f"[setup] Dagster cannot run: {problem}")
            meta["dagster"] = f"not run: {problem}"
        else:
            meta["dagster"] = version
            configs += [
                Config(
                    "dagster_sqlite",
                    "Dagster materialize(), SQLite instance",
                    lambda: dagster("sqlite", work, tasks),
                ),
                Config(
                    "dagster_memory",
                    "Dagster materialize(), in-memory instance",
                    lambda: dagster("memory", work, tasks),
                ),
            ]
    configs += [
        Config(
            "run_first",
            "`gristmill run`, first: 200 tables, DuckDB file (process)",
            lambda: gristmill_run(template, project, env, first=True, tasks=tasks),
            "process",
        ),
        Config(
            "run_noop",
            "`gristmill run`, nothing changed, DuckDB file (process)",
            lambda: gristmill_run(template, project, env, first=False, tasks=tasks),
            "process",
        ),
    ]
    if args.ducklake:
        lake_template = work / "project-200-ducklake"
        dag.write_project(lake_template, storage="ducklake")
        lake_project = work / "run-200-ducklake"
        configs += [
            Config(
                "run_first_lake",
                "`gristmill run`, first: 200 tables on DuckLake (process)",
                lambda: gristmill_run(lake_template, lake_project, env, first=True, tasks=tasks),
                "process",
            ),
            Config(
                "run_noop_lake",
                "`gristmill run`, nothing changed, DuckLake (process)",
                lambda: gristmill_run(lake_template, lake_project, env, first=False, tasks=tasks),
                "process",
            ),
        ]
    configs += [
        Config(
            "plan_cli_cold",
            "`gristmill plan`, cold (process)",
            lambda: plan_cli(plan_project, env, cold=True, models=models),
            "plan",
        ),
        Config(
            "plan_cli_warm",
            "`gristmill plan`, warm (process)",
            lambda: plan_cli(plan_project, env, cold=False, models=models),
            "plan",
        ),
        Config(
            "plan_cold",
            "Workspace(root).plan(), cold (in-process)",
            lambda: plan_in_process(plan_project, env, cold=True, models=models),
            "plan",
        ),
        Config(
            "plan_warm",
            "Workspace(root).plan(), warm (in-process)",
            lambda: plan_in_process(plan_project, env, cold=False, models=models),
            "plan",
        ),
    ]
    print("[setup] warm-up: one untimed run of each configuration (compiles the bytecode) ...", flush=True)
    for c in configs:
        warm = c.measure()
        if warm.problem:
            print(f"[setup]   {c.label}: {warm.problem}")
    return configs, meta


# -- report ----------------------------------------------------------------------------------------


def paired(a: Config, b: Config | None) -> float | None:
    """Median of the per-round CPU ratios a/b."""
    if b is None or not b.correct or not a.correct:
        return None
    ratios = [x.cpu / y.cpu for x, y in zip(a.runs, b.runs, strict=False) if y.cpu > 0]
    return statistics.median(ratios) if ratios else None


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _num(value: float) -> str:
    """Three significant digits, never in exponent form (0.000487, 2.56, 54.7, 10900)."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:#.3g}".rstrip(".") if value >= 0.001 else f"{value:.6f}".rstrip("0").rstrip(".")


GROUPS = {
    "dag": "the call only, in-process (imports, DAG definition, opening storage not timed)",
    "process": "the whole process: start-up, parse, plan, DuckDB builds, history",
}


def report(configs: list[Config], meta: dict[str, str], args: argparse.Namespace, loads: list[float]) -> None:
    by_key = {c.key: c for c in configs}
    tasks = len(dag.nodes())
    print()
    for name, value in meta.items():
        print(f"{name}: {value}")
    print(f"load average (1 min): {min(loads):.1f}-{max(loads):.1f}")
    runs = f"median of {args.repeat} fresh processes" if args.repeat > 1 else "one fresh process"
    print(f"{runs} per configuration; CPU = user+sys of all threads (processes: of the whole tree)")
    print("vs runner / vs floor: median of the per-round CPU ratios\n")
    runner, floor = by_key.get("runner"), by_key.get("floor")
    head = (
        f"{'configuration':<60}{'CPU s':>10}{'ms/task':>10}{'wall s':>10}{'vs runner':>11}{'vs floor':>10}"
        "  correct"
    )
    print(head)
    for group, title in GROUPS.items():
        print(f"-- {title} ".ljust(len(head), "-"))
        for c in configs:
            if c.group != group or not c.runs:
                continue
            ratios = f"{_ratio(paired(c, runner)):>11}{_ratio(paired(c, floor)):>10}"
            print(
                f"{c.label:<60}{_num(c.cpu):>10}{_num(c.cpu / tasks * 1000):>10}{_num(c.wall):>10}{ratios}"
                f"  {'yes' if c.correct else 'NO'}"
            )
            _problems(c)
    plans = [c for c in configs if c.group == "plan" and c.runs]
    if plans:
        models = PLAN_LAYERS * dag.WIDTH
        print(f"\nplanning {models:,} models (parsed: models parsed rather than taken from the cache)")
        head = f"{'configuration':<60}{'CPU s':>10}{'ms/model':>10}{'wall s':>10}{'parsed':>8}  correct"
        print(head)
        print("-" * len(head))
        for c in plans:
            parsed = {m.parsed for m in c.runs if m.parsed is not None}
            shown = "/".join(str(p) for p in sorted(parsed)) if parsed else "-"
            print(
                f"{c.label:<60}{_num(c.cpu):>10}{_num(c.cpu / models * 1000):>10}{_num(c.wall):>10}{shown:>8}"
                f"  {'yes' if c.correct else 'NO'}"
            )
            _problems(c)
    headlines(by_key)


def _problems(c: Config) -> None:
    for m in c.runs:
        if m.problem:
            print(f"    PROBLEM: {m.problem}")
            break


def headlines(by_key: dict[str, Config]) -> None:
    tasks = len(dag.nodes())
    print()
    runner, floor = by_key.get("runner"), by_key.get("floor")
    if runner and runner.correct:
        per_task = runner.cpu / tasks * 1000
        verdict = "met" if per_task <= 1 else "missed"
        print(
            f"Gristmill runner + history: {per_task:.2f} ms CPU per task (target <= 1 ms: {verdict})", end=""
        )
        if floor and floor.correct:
            print(f"; {(runner.cpu - floor.cpu) / tasks * 1000:.2f} ms over the graphlib floor")
        else:
            print()
        for key in ("dagster_sqlite", "dagster_memory"):
            other = by_key.get(key)
            ratio = paired(other, runner) if other else None
            if other and ratio is not None:
                print(f"{other.label} / Gristmill runner: {ratio:.1f}x CPU")
    else:
        print("the Gristmill runner did not run correctly: no runner ratios")
    for key in ("run_first", "run_noop", "run_first_lake", "run_noop_lake"):
        c = by_key.get(key)
        if c and c.correct:
            print(f"{c.label}: {c.cpu / tasks * 1000:.1f} ms CPU per model")
    warm = by_key.get("plan_warm")
    if warm and warm.correct:
        verdict = "met" if warm.wall < 1 else "missed"
        models = PLAN_LAYERS * dag.WIDTH
        print(
            f"planning {models:,} models, warm, in-process: {warm.wall:.2f} s wall (target < 1 s: {verdict})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--repeat", type=int, default=3, help="fresh processes per configuration, round-robin; medians")
    add("--skip-peers", action="store_true", help="leave out Dagster")
    add("--ducklake", action="store_true", help="also `gristmill run` on DuckLake storage (~40 s a build)")
    add("--workdir", type=Path, default=WORK, help=f"default: {WORK.relative_to(REPO)}")
    args = parser.parse_args()
    configs, meta = setup(args, args.workdir.resolve())
    loads = [os.getloadavg()[0]]
    for rep in range(args.repeat):
        print(f"\nround {rep + 1} of {args.repeat}", flush=True)
        for c in configs:
            measured = c.measure()
            c.runs.append(measured)
            status = "ok" if not measured.problem else f"PROBLEM: {measured.problem}"
            took = f"{_num(measured.wall):>9} s wall {_num(measured.cpu):>9} s CPU"
            print(f"  {c.label:<60}{took}  {status}", flush=True)
        loads.append(os.getloadavg()[0])
    report(configs, meta, args, loads)


if __name__ == "__main__":
    main()
