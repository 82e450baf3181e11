"""Time a command as a process tree: wall seconds and user+sys CPU seconds of it and its children."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Outcome:
    wall: float
    cpu: float
    ok: bool
    out: str = ""
    err: str = ""
    models: int | None = None
    """Models built by the step, when the tool can tell."""
    note: str = ""

    def failure(self) -> str:
        lines = [line for line in (self.err or self.out).strip().splitlines() if line.strip()]
        return lines[-1].strip()[:160] if lines else "failed"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    command: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 3600,
) -> Outcome:
    """Run ``command`` to completion; CPU is the RUSAGE_CHILDREN delta (all threads, all waited-for
    descendants). ``env`` adds variables to this process's environment (None removes one)."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    cpu, wall = _children_cpu(), time.perf_counter()
    try:
        done = subprocess.run(
            [str(c) for c in command],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        return Outcome(time.perf_counter() - wall, _children_cpu() - cpu, False, "", f"timed out: {err}")
    return Outcome(
        time.perf_counter() - wall, _children_cpu() - cpu, done.returncode == 0, done.stdout, done.stderr
    )


@dataclass
class Row:
    key: str
    label: str
    outcomes: list[Outcome]

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)

    @property
    def wall(self) -> float:
        return statistics.median(o.wall for o in self.outcomes)

    @property
    def cpu(self) -> float:
        return statistics.median(o.cpu for o in self.outcomes)

    @property
    def models(self) -> int | None:
        counts = [o.models for o in self.outcomes if o.models is not None]
        return int(statistics.median(counts)) if counts else None

    @property
    def note(self) -> str:
        failed = [o for o in self.outcomes if not o.ok]
        if failed:
            return "FAILED: " + failed[0].failure()
        return next((o.note for o in self.outcomes if o.note), "")
