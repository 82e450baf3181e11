"""Dagster in its own venv, ``bench/.venv-dagster``, installed on first use; each measurement is
``dagster_dag.py`` in a fresh process of that venv's Python."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

from bench.transform.measure import Outcome, run
from bench.transform.peers import BENCH, PEER_ENV, Peer, ensure, versions

PINNED = "1.13.27"
DAGSTER = Peer("dagster", "dagster", BENCH / ".venv-dagster", (f"dagster=={PINNED}", "psutil"), ("dagster",))
SCRIPT = Path(__file__).with_name("dagster_dag.py")


def _nearest(wanted: str) -> str | None:
    """The registry's version of dagster closest to ``wanted`` (``pip index versions``)."""
    done = subprocess.run(
        [DAGSTER.python, "-m", "pip", "index", "versions", "dagster"], capture_output=True, text=True
    )
    found = re.search(r"Available versions:\s*(.+)", done.stdout)
    if not found:
        return None

    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", version)[:3])

    target = parts(wanted)
    available = [v.strip() for v in found.group(1).split(",") if re.fullmatch(r"\d+\.\d+\.\d+", v.strip())]
    return min(
        available,
        key=lambda v: tuple(abs(a - b) for a, b in zip(parts(v), target, strict=False)),
        default=None,
    )


def setup() -> tuple[str | None, str]:
    """Install Dagster on first use (the pinned version, else the nearest the registry has):
    (why it cannot run or None, its version)."""
    problem = ensure(DAGSTER)
    if problem and DAGSTER.python.exists():
        nearest = _nearest(PINNED)
        if nearest and nearest != PINNED:
            print(f"[setup] dagster {PINNED} is not available; installing the nearest, {nearest}", flush=True)
            problem = ensure(replace(DAGSTER, packages=(f"dagster=={nearest}", "psutil")))
    return problem, "" if problem else versions(DAGSTER)


def materialize(mode: str, layers: int, width: int, tmp: Path) -> Outcome:
    """One ``materialize()`` (``mode`` sqlite or memory) in a fresh process of the venv's Python;
    its last line of output is ``dagster_dag.py``'s JSON."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**PEER_ENV, "TMPDIR": str(tmp), "DAGSTER_HOME": None}
    return run([DAGSTER.python, SCRIPT, mode, str(layers), str(width)], tmp, env)
