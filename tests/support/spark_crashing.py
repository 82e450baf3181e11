"""Kill a ``gristmill`` process on the spark engine at a point of a commit (the crash tests).

``python -m tests.support.spark_crashing after_ledger_commit:3 run --project p`` runs the CLI as
``gristmill run --project p``, killing the process (SIGKILL, no cleanup) the third time a commit
reaches ``after_ledger_commit``. The points are ``gristmill.engines.spark.transactions.CRASH_POINTS``;
production code only ever calls the hook."""

from __future__ import annotations

import os
import signal
import sys

from gristmill.engines.spark import transactions as engine


def kill_at(point: str, count: int) -> None:
    if point not in engine.CRASH_POINTS:
        raise ValueError(f"no crash point {point!r}; the points are {', '.join(engine.CRASH_POINTS)}")
    hits = 0

    def hook(reached: str) -> None:
        nonlocal hits
        if reached == point:
            hits += 1
            if hits >= count:
                os.kill(os.getpid(), signal.SIGKILL)

    engine.fault_hook = hook


def main(argv: list[str]) -> None:
    point, *rest = argv
    phase, _, count = point.partition(":")
    kill_at(phase, int(count or 1))
    sys.argv = ["gristmill", *rest]
    from gristmill.cli.entry import main as gristmill

    gristmill()


if __name__ == "__main__":
    main(sys.argv[1:])
