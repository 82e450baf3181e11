"""Scheduler tick-to-start latency: a schedule firing every second, the scheduler as a process.

    .venv/bin/python -m bench.orchestration.ticks [--seconds 20]

Two moments per tick, both read from the state store the scheduler writes: when the run's
process was started (``ticks.started_at``) and when the run recorded itself (``runs.started_at``,
after the child loaded the project). The tick is the cron instant, so the latency includes how
late the scheduler woke up.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sqlite3
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).parents[2]
WORK = REPO / "bench" / ".work-orchestration" / "ticks"
GRISTMILL = REPO / ".venv" / "bin" / "gristmill"

TOML = """name = "ticks"

[schedules.every_second]
cron = "* * * * * *"
select = ["marts.*"]
"""


def measure(seconds: float) -> dict[str, list[float]]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(GRISTMILL), "init", str(WORK)], check=True, capture_output=True)
    subprocess.run([str(GRISTMILL), "run", "--project", str(WORK)], check=True, capture_output=True)
    (WORK / "gristmill.toml").write_text(TOML)
    log = (WORK / "scheduler.log").open("w")
    scheduler = subprocess.Popen(
        [str(GRISTMILL), "scheduler", "--project", str(WORK), "--no-http"], stdout=log, stderr=log
    )
    try:
        time.sleep(seconds)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    with sqlite3.connect(WORK / ".gristmill" / "state.sqlite") as db:
        rows = db.execute(
            "SELECT t.tick_at, t.started_at, r.started_at FROM ticks t JOIN runs r USING (run_id)"
            " WHERE t.started_at IS NOT NULL ORDER BY t.tick_at"
        ).fetchall()
    spawn = [_ms(tick, started) for tick, started, _ in rows[1:]]  # the first waits for the fork server
    recorded = [_ms(tick, run) for tick, _, run in rows[1:]]
    return {"spawn": spawn, "recorded": recorded}


def _ms(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() * 1000


def report(found: dict[str, list[float]]) -> list[str]:
    lines = [f"{'tick -> ':<40}{'ticks':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"]
    for key, label in (("spawn", "run process started"), ("recorded", "run recorded (project loaded)")):
        values = sorted(found[key])
        if not values:
            lines.append(f"{label:<40}  no ticks ran")
            continue
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        lines.append(
            f"{label:<40}{len(values):>6}{statistics.median(values):>9.1f}{p95:>9.1f}{values[-1]:>9.1f}"
        )
    spawn = sorted(found["spawn"])
    if spawn:
        verdict = "met" if statistics.median(spawn) <= 100 else "missed"
        lines.append(f"tick-to-start p50 {statistics.median(spawn):.1f} ms (target <= 100 ms: {verdict})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the scheduler runs")
    args = parser.parse_args()
    for line in report(measure(args.seconds)):
        print(line)


if __name__ == "__main__":
    main()
