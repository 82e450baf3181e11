"""Data-quality benchmark: 15 checks on a 10M-row table by Gristmill, hand-written SQL and Soda Core v3.

    .venv/bin/python -m bench.quality [--skip-peers] [--repeat N] [--rows N]

Generates ``orders`` (10M rows x 8 columns, planted defects) and ``customers`` (100k rows) as
Parquet, lands them with ``gristmill run`` in one DuckDB file, then measures ``gristmill check``
against hand-written plans on the same file (one fused statement; the cheapest five-statement
split; each with and without LIMIT 5 samples of the failed checks) and Soda Core v3 on its own
DuckDB 1.0 file (samples on and off). Each configuration is a fresh process timed by wall clock
and user+sys CPU of its process tree; with ``--repeat N`` they run N times round-robin and the
table shows medians. Exactly 10 of the 15 checks must fail; any other outcome marks the run failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.quality import data, gristmill_run, handplan, soda_v3
from bench.quality.spec import CHECKS, CUSTOMERS, Scale, verify
from bench.transform.measure import Outcome, run

REPO = Path(__file__).parents[2]
WORK = REPO / "bench" / ".work-quality"
MARKER = ".quality-bench"


@dataclass
class Measured:
    outcome: Outcome
    statements: int | None
    problems: list[str]


@dataclass
class Config:
    key: str
    label: str
    measure: Callable[[], Measured]
    runs: list[Measured] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return bool(self.runs) and all(not m.problems for m in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(m.outcome.wall for m in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(m.outcome.cpu for m in self.runs)

    @property
    def statements(self) -> str:
        counts = {m.statements for m in self.runs if m.statements is not None}
        return "-" if not counts else "/".join(str(c) for c in sorted(counts))


# -- measuring one configuration ------------------------------------------------------------------


def _failed(problems: list[str], outcome: Outcome) -> Measured:
    return Measured(outcome, None, problems or [outcome.failure()])


def gristmill_check(project: Path, env: dict[str, str | None]) -> Measured:
    before = gristmill_run.last_run(project)
    outcome = gristmill_run.check(project, env)
    if gristmill_run.last_run(project) == before:
        return _failed([f"no new results recorded: {outcome.failure()}"], outcome)
    found, unknown = gristmill_run.results(project)
    return Measured(outcome, None, verify(found) + [f"unknown check {name!r}" for name in unknown])


def hand(plan: Path, *, samples: bool, python: Path | str = sys.executable) -> Measured:
    outcome = handplan.execute(plan, with_samples=samples, python=python)
    if not outcome.note:
        return _failed([], outcome)
    failures, statements = handplan.answer(outcome)
    return Measured(outcome, statements, verify({k: v > 0 for k, v in failures.items()}))


def soda(files: tuple[Path, Path]) -> Measured:
    outcome = soda_v3.scan(files)
    if not outcome.note:
        return _failed([], outcome)
    failed, queries, errors = soda_v3.answer(outcome)
    return Measured(outcome, queries, verify(failed) + errors)


# -- setup -----------------------------------------------------------------------------------------


def _fresh(work: Path) -> None:
    if work.exists():
        if any(work.iterdir()) and not (work / MARKER).exists():
            sys.exit(f"{work} exists and was not made by this benchmark; remove it or pass another --workdir")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / MARKER).write_text("made by python -m bench.quality; deleted at its next run\n")


def snapshot(work: Path) -> dict[str, str | None]:
    """A copy of ``gristmill/`` as it is now, and the environment that runs it (from bytecode
    cached under the work folder, as an installed tool runs): others may edit the checkout
    while this runs."""
    shutil.rmtree(work / "src", ignore_errors=True)
    shutil.copytree(
        REPO / "gristmill", work / "src" / "gristmill", ignore=shutil.ignore_patterns("__pycache__")
    )
    return {
        "PYTHONPATH": str(work / "src"),
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
    }


def has_check(env: dict[str, str | None], cwd: Path) -> bool:
    return run([gristmill_run.GRISTMILL, "check", "--help"], cwd, env).ok


def wait_for_check(work: Path, env: dict[str, str | None], minutes: float) -> dict[str, str | None]:
    """The snapshot's environment once ``gristmill check`` exists, polling the checkout every
    two minutes for up to ``minutes``; exits if it never appears."""
    deadline = time.monotonic() + minutes * 60
    while not has_check(env, work):
        if time.monotonic() > deadline:
            sys.exit(f"`gristmill check` did not appear within {minutes:.0f} minutes")
        print("[setup] `gristmill check` does not exist yet; looking again in 2 minutes", flush=True)
        time.sleep(120)
        if run([gristmill_run.GRISTMILL, "check", "--help"], work).ok:
            env = snapshot(work)
    return env


def _version(distribution: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(distribution)


def setup(args: argparse.Namespace, work: Path) -> tuple[list[Config], dict[str, str]]:
    scale = Scale(args.rows)
    meta = {"cpu": f"{os.cpu_count()} cores"}
    _fresh(work)
    env = snapshot(work)
    print(f"[setup] writing {args.rows:,} orders to {work / 'data'} ...", flush=True)
    started = time.perf_counter()
    files = data.write(work / "data", scale)
    print(f"[setup] data written in {time.perf_counter() - started:.1f} s; landing it with gristmill run ...")
    project = work / "gristmill"
    gristmill_run.create(project, files)
    loaded = gristmill_run.load(project, scale, env)
    if not loaded.ok:
        sys.exit(f"gristmill run failed: {loaded.failure()}\n{loaded.out[-2000:]}\n{loaded.err[-2000:]}")
    print(f"[setup] landed in {loaded.wall:.1f} s ({gristmill_run.database(project)})", flush=True)
    env = wait_for_check(work, env, args.wait)
    meta["gristmill"] = (
        f"duckdb {_version('duckdb')} + sqlglot {_version('sqlglot')}"
        f" (source snapshot of {REPO / 'gristmill'} at {time.strftime('%Y-%m-%d %H:%M')})"
    )
    warm = gristmill_run.check(project, env)  # compiles the bytecode; reads the file into the cache
    print(f"[setup] warm-up gristmill check: {warm.wall:.1f} s wall; its last line: {warm.failure()}")

    tables = handplan.Tables(gristmill_run.ORDERS, gristmill_run.CUSTOMERS)
    db = gristmill_run.database(project)
    plans = work / "plans"
    plans.mkdir()
    email = gristmill_run.email_pattern(env)
    split = handplan.write(plans / "split.json", db, tables, scale, email, fused=False)
    fused = handplan.write(plans / "fused.json", db, tables, scale, email, fused=True)
    configs = [
        Config("gristmill", "gristmill check", lambda: gristmill_check(project, env)),
        Config("split", "hand: 5-statement split plan, no samples", lambda: hand(split, samples=False)),
        Config("split_samples", "hand: 5-statement split plan + samples", lambda: hand(split, samples=True)),
        Config("fused", "hand: one fused statement, no samples", lambda: hand(fused, samples=False)),
        Config("fused_samples", "hand: one fused statement + samples", lambda: hand(fused, samples=True)),
    ]
    if not args.skip_peers:
        problem, versions = soda_v3.setup()
        if problem:
            print(f"[setup] Soda Core v3 cannot run: {problem}")
            meta["soda"] = f"not run: {problem}"
        else:
            meta["soda"] = versions
            soda_db = work / "soda" / "soda.duckdb"
            soda_db.parent.mkdir()
            print("[setup] loading the Parquet files into Soda's DuckDB 1.0 file ...", flush=True)
            soda_v3.create_database(soda_db, files)
            scans = soda_v3.write(work / "soda", soda_db, scale, email)
            plain = handplan.Tables("orders", "customers")
            old = handplan.write(plans / "split_duckdb10.json", soda_db, plain, scale, email, fused=False)
            python = soda_v3.SODA.python
            configs += [
                Config("soda", "Soda Core v3, default (samples on)", lambda: soda(scans[True])),
                Config("soda_nosamples", "Soda Core v3, samples limit: 0", lambda: soda(scans[False])),
                Config(
                    "split_10",
                    "hand: split plan, DuckDB 1.0 (Soda's file)",
                    lambda: hand(old, samples=False, python=python),
                ),
                Config(
                    "split_samples_10",
                    "hand: split plan + samples, DuckDB 1.0 (Soda's file)",
                    lambda: hand(old, samples=True, python=python),
                ),
            ]
    return configs, meta


# -- report ----------------------------------------------------------------------------------------


def paired(a: Config, b: Config) -> float | None:
    """Median of the per-repetition CPU ratios a/b (each pair measured in the same round)."""
    pairs = zip(a.runs, b.runs, strict=False)
    ratios = [x.outcome.cpu / y.outcome.cpu for x, y in pairs if y.outcome.cpu > 0]
    return statistics.median(ratios) if ratios else None


def _cheapest(configs: list[Config], keys: tuple[str, ...]) -> Config | None:
    """The configuration among ``keys`` with the lowest median CPU that gave the right results."""
    found = [c for c in configs if c.key in keys and c.correct]
    return min(found, key=lambda c: c.cpu) if found else None


def report(configs: list[Config], meta: dict[str, str], args: argparse.Namespace, loads: list[float]) -> None:
    by_key = {c.key: c for c in configs}
    print(
        f"\norders: {args.rows:,} rows x 8 columns, customers: {CUSTOMERS:,} rows; {len(CHECKS)} checks,"
        f" {sum(c.fails for c in CHECKS)} planted to fail"
    )
    for name, value in meta.items():
        print(f"{name}: {value}")
    print(f"load average (1 min): {min(loads):.1f}-{max(loads):.1f}")
    runs = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
    print(f"{runs}; wall and user+sys CPU seconds of each configuration's process tree\n")
    base = _cheapest(configs, ("split_samples", "fused_samples"))
    print(f"{'configuration':<54}{'statements':>11}{'wall s':>9}{'cpu s':>9}{'cpu ratio':>11}  correct")
    for c in configs:
        if not c.runs:
            continue
        paired_ratio = paired(c, base) if base else None
        ratio = "n/a" if paired_ratio is None else f"{paired_ratio:.2f}"
        print(
            f"{c.label:<54}{c.statements:>11}{c.wall:>9.2f}{c.cpu:>9.2f}{ratio:>11}"
            f"  {'yes' if c.correct else 'NO'}"
        )
        for m in c.runs:
            if m.problems:
                print(f"    MISMATCH: {'; '.join(m.problems[:5])}")
                break
    if base:
        print(
            f"\ncpu ratio: against the cheapest hand-written plan with samples ({base.label}),"
            " the median of the ratios within each round"
        )
    gm = by_key.get("gristmill")
    if gm is None or not gm.correct:
        print("\ngristmill check did not give the expected results: no headline ratios")
        return

    def headline(label: str, other: Config | None, target: str = "") -> None:
        if other is None or not other.correct:
            return
        ratio = paired(gm, other)
        if ratio is not None:
            print(f"{label} = {ratio:.2f}{target}")

    print()
    headline("gristmill check / cheapest hand plan", base, " (target <= 1.10)")
    headline("gristmill check / cheapest hand plan without samples", _cheapest(configs, ("split", "fused")))
    headline("gristmill check / Soda v3 default", by_key.get("soda"))
    headline("gristmill check / Soda v3 no samples", by_key.get("soda_nosamples"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rows", type=int, default=10_000_000, help="orders rows (defects scale with it)")
    add("--repeat", type=int, default=1, help="round-robin repetitions; the table shows medians")
    add("--skip-peers", action="store_true", help="Gristmill against the hand-written plans only")
    add("--workdir", type=Path, default=WORK, help=f"default: {WORK.relative_to(REPO)}")
    add("--wait", type=float, default=60, help="minutes to wait for `gristmill check` to exist")
    args = parser.parse_args()
    if args.rows < 10_000:
        parser.error("--rows must be at least 10000")
    configs, meta = setup(args, args.workdir.resolve())
    loads = [os.getloadavg()[0]]
    for rep in range(args.repeat):
        print(f"\nround {rep + 1} of {args.repeat}")
        for c in configs:
            measured = c.measure()
            c.runs.append(measured)
            status = "ok" if not measured.problems else "MISMATCH: " + "; ".join(measured.problems[:3])
            took = f"{measured.outcome.wall:7.2f} s wall {measured.outcome.cpu:7.2f} s cpu"
            print(f"  {c.label:<54}{took}  {status}")
        loads.append(os.getloadavg()[0])
    report(configs, meta, args, loads)


if __name__ == "__main__":
    main()
