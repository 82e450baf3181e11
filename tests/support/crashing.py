"""Kill a ``gristmill`` process at a named point (the exactly-once and crash tests).

``python -m tests.support.crashing committed:2 stream marts.x --project p`` runs the CLI as
``gristmill stream marts.x --project p``, with a fault hook set to kill the process (SIGKILL, no
cleanup) the second time it reaches ``committed``. The points are a stream batch's phases
(``gristmill.streaming.faults.PHASES``) and the spark engine's commit points
(``gristmill.engines.spark.transactions.CRASH_POINTS``); production code only ever calls the hooks."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from gristmill.streaming import faults

ROOT = Path(__file__).resolve().parents[2]


def kill_at(phase: str, count: int = 1) -> None:
    """Make this process kill itself the ``count``-th time it reaches ``phase``."""
    from gristmill.engines.spark import transactions as spark

    if phase not in (*faults.PHASES, *spark.CRASH_POINTS):
        points = ", ".join((*faults.PHASES, *spark.CRASH_POINTS))
        raise ValueError(f"no crash point {phase!r}; the points are {points}")
    hits = 0

    def hook(reached: str) -> None:
        nonlocal hits
        if reached != phase:
            return
        hits += 1
        if hits >= count:
            os.kill(os.getpid(), signal.SIGKILL)

    if phase in faults.PHASES:
        faults.hook = hook
    else:
        spark.fault_hook = hook


def command(point: str) -> list[str]:
    """The start of a command line running ``gristmill`` killed at ``point`` (``phase:N``)."""
    return [sys.executable, "-m", "tests.support.crashing", point]


def environment() -> dict[str, str]:
    """The environment that lets such a command import the tests, from any working directory."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def main(argv: list[str]) -> None:
    point, *rest = argv
    phase, _, count = point.partition(":")
    kill_at(phase, int(count or 1))
    sys.argv = ["gristmill", *rest]
    from gristmill.cli.entry import main as gristmill

    gristmill()


if __name__ == "__main__":
    main(sys.argv[1:])
