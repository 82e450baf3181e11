"""Time a command with everything it started, the JVM included.

pyspark starts its JVM as a child of the Python process and does not wait for it: when Python
exits, the JVM (its stdin closed) shuts itself down a moment later, an orphan. Its CPU would then
reach nobody's RUSAGE_CHILDREN. So this process makes itself the *child subreaper* of what it
starts (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): orphans are re-parented to it, and it waits for
every one of them before it reads the clock and the CPU counters. Wall time therefore runs until
the whole process tree has exited (JVM shutdown included), and CPU is user+sys of every process
of that tree.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.transform.measure import Outcome, _children_cpu
from bench.transform.measure import run as run_process

_PR_SET_CHILD_SUBREAPER = 36
step_timeout = 3600.0
"""Seconds a step may take before it is stopped and reported as failed (a hung build)."""
_subreaper = False


def _become_subreaper() -> None:
    global _subreaper
    if not _subreaper:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
        _subreaper = True


def _reap_all(deadline: float) -> int:
    """Wait for every descendant left behind (re-parented here); those still alive at ``deadline``
    are killed (they are this run's own processes). Returns how many were reaped."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
            continue
        if time.perf_counter() > deadline:
            for line in os.popen(f"pgrep -P {os.getpid()}").read().split():
                os.kill(int(line), signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)


def run(
    command: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
) -> Outcome:
    """``command`` to completion, then every process it left behind: wall until the last one
    exits, user+sys CPU of all of them."""
    _become_subreaper()
    _reap_all(time.perf_counter())  # nothing of an earlier step may count here
    cpu, wall = _children_cpu(), time.perf_counter()
    outcome = run_process(command, cwd, env, timeout or step_timeout)
    orphans = _reap_all(time.perf_counter() + 120)
    outcome.wall = time.perf_counter() - wall
    outcome.cpu = _children_cpu() - cpu
    outcome.note = f"{orphans} orphan(s) reaped" if orphans else ""
    return outcome
