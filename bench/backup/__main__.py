"""`gristmill backup` of a ~1 GB lake against a plain `cp -r` of the same folder, in one run.

A project whose models write incompressible Parquet (random doubles, hashes) until the lake
holds about ``--gb`` gigabytes; then, alternately and twice each (the best of two, both with a
warm page cache), ``cp -r .gristmill`` and ``gristmill backup`` into a fresh folder on the same
disk. The backup also hashes every file (SHA-256) and copies the SQLite catalog and history
through SQLite's backup API; the target is within 1.5x the plain copy.

    .venv/bin/python -m bench.backup [--gb 1.0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gristmill.workspace import Workspace
from gristmill.workspace.backups import Backups

ROWS_PER_GB = 19_000_000
"""About 53 bytes a row of Parquet: two random doubles, an integer and a 32-character hash."""


def make_project(root: Path, gb: float, models: int = 8) -> None:
    (root / "models" / "marts").mkdir(parents=True)
    (root / "gristmill.toml").write_text('name = "bench_backup"\n')
    rows = int(ROWS_PER_GB * gb / models)
    for n in range(models):
        (root / "models" / "marts" / f"part_{n}.sql").write_text(
            f"select i, random() as a, random() as b, md5(cast(i + {n * rows} as varchar)) as h "
            f"from range({rows}) t(i)\n"
        )


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timed_copy(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return time.perf_counter() - started


def timed_backup(root: Path, target: Path) -> float:
    started = time.perf_counter()
    Backups.for_project(root).backup(str(target))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-", dir=Path.cwd()) as temp:
        root = Path(temp) / "project"
        make_project(root, args.gb)
        started = time.perf_counter()
        assert Workspace(root).run().ok
        size = folder_size(root / ".gristmill") / 1e9
        print(f"lake built in {time.perf_counter() - started:.1f} s: {size:.2f} GB")
        copies, backups = [], []
        for attempt in range(2):
            copies.append(timed_copy(root / ".gristmill", Path(temp) / f"copy{attempt}"))
            backups.append(timed_backup(root, Path(temp) / f"backup{attempt}"))
            shutil.rmtree(Path(temp) / f"copy{attempt}")
            shutil.rmtree(Path(temp) / f"backup{attempt}")
        copy, backup = min(copies), min(backups)
        ratio = backup / copy
        print(f"cp -r: {copy:.2f} s   gristmill backup: {backup:.2f} s   ratio {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
