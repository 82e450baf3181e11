"""Shared helpers: timing (in this process, and as whole processes), a DuckLake to write into,
result tables. Nothing here imports Gristmill, so a baseline never pays for it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.ingest.plain_duckdb import lake

__all__ = ["REPO", "lake", "process", "python_process", "report", "report_processes", "timed"]

REPO = Path(__file__).parents[2]


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (this process and its finished children)."""
    wall = time.perf_counter()
    cpu = time.process_time() + _children_cpu()
    action()
    return time.perf_counter() - wall, time.process_time() + _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process(command: Sequence[str | Path], cwd: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS in MB of one command
    run as its own process, interpreter start and imports included: what a user pays.

    Measured by GNU time, a small process that starts the command: a child forked from this
    (large) benchmark process would report this process's memory as its own peak."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as figures:
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", figures.name, *(str(c) for c in command)],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=_env(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {(done.stderr or done.stdout)[-2000:]}")
        wall, user, system, peak_kb = figures.read().split()[-4:]
    return float(wall), float(user) + float(system), int(peak_kb) / 1024


def python_process(script: str, *args: str | Path) -> tuple[float, float, float]:
    """``process`` of ``python -c script args`` (the repository on the path, for bench.*)."""
    return process([sys.executable, "-c", script, *(str(a) for a in args)], cwd=REPO)


def gristmill_process(project: Path) -> tuple[float, float, float]:
    """``gristmill run`` in ``project``, as a user starts it."""
    return process([Path(sys.executable).with_name("gristmill"), "run"], cwd=project)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def report(
    title: str, rows: list[tuple[str, float, float]], baseline: str, target: str | None = None
) -> None:
    base = dict((name, (wall, cpu)) for name, wall, cpu in rows)[baseline]
    print(f"\n{title} — in this process (imports not counted)")
    print(f"{'':40}{'wall s':>9}{'cpu s':>9}{'wall ratio':>12}{'cpu ratio':>11}")
    for name, wall, cpu in rows:
        print(f"{name:40}{wall:>9.2f}{cpu:>9.2f}{wall / base[0]:>12.2f}{cpu / base[1]:>11.2f}")
    if target:
        print(f"target: {target}")


def report_processes(
    title: str, rows: list[tuple[str, float, float, float]], baseline: str, target: str | None = None
) -> None:
    """Whole processes: start-up, imports and peak memory included."""
    base = {name: (wall, cpu, peak) for name, wall, cpu, peak in rows}[baseline]
    print(f"\n{title} — whole processes (start-up and imports included)")
    print(f"{'':40}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}{'wall ratio':>12}{'cpu ratio':>11}{'memory':>8}")
    for name, wall, cpu, peak in rows:
        print(
            f"{name:40}{wall:>9.2f}{cpu:>9.2f}{peak:>9.0f}{wall / base[0]:>12.2f}{cpu / base[1]:>11.2f}"
            f"{peak / base[2]:>8.2f}"
        )
    if target:
        print(f"target: {target}")
