"""Shared helpers: timing, a DuckLake to write into, result tables."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from gristmill._util.duckdb_extensions import connect


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (this process and its finished children)."""
    wall = time.perf_counter()
    cpu = time.process_time() + _children_cpu()
    action()
    return time.perf_counter() - wall, time.process_time() + _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lake(folder: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB session over a fresh DuckLake, as Gristmill's own engine opens it."""
    folder.mkdir(parents=True, exist_ok=True)
    con = connect(extensions=("ducklake", "sqlite"))
    con.execute(f"ATTACH 'ducklake:sqlite:{folder}/catalog.sqlite' AS lake (DATA_PATH '{folder}/data/')")
    con.execute("USE lake")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    return con


def report(
    title: str, rows: list[tuple[str, float, float]], baseline: str, target: str | None = None
) -> None:
    base = dict((name, wall) for name, wall, _ in rows)[baseline]
    print(f"\n{title}")
    print(f"{'':40}{'wall s':>9}{'cpu s':>9}{'vs ' + baseline:>24}")
    for name, wall, cpu in rows:
        print(f"{name:40}{wall:>9.2f}{cpu:>9.2f}{wall / base:>24.2f}")
    if target:
        print(f"target: {target}")
