"""Backfills through `gristmill backfill`: a range of intervals built a chunk per run, each
interval's outcome kept, and a failed, cancelled or killed backfill resumed where it stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.engines import Engine, Relation, open_engine
from gristmill.project.specs import ModelSpec
from gristmill.runtime.build.materialize import materialize
from gristmill.state.lake.intervals import read_intervals
from gristmill.workspace import Workspace
from tests.conftest import Cli, write_files

FIRST_DAY = date(2024, 1, 1)
DAYS = 60  # 2024-01-01 .. 2024-02-29


def events(bad: tuple[date, date] | None = None) -> str:
    """Three events a day; amounts are negative on the days in ``bad`` (inclusive)."""
    lines = ["id,ts,amount"]
    for n in range(DAYS * 3):
        at = datetime(2024, 1, 1) + timedelta(hours=8 * n)
        amount = n % 7 + 1
        if bad and bad[0] <= at.date() <= bad[1]:
            amount = -amount
        lines.append(f"{n},{at:%Y-%m-%d %H:%M:%S},{amount}")
    return "\n".join(lines) + "\n"


DAILY = """\
-- kind: incremental
-- time: day
-- interval: day
-- start: 2024-01-01
select cast(ts as date) as day, count(*) as events,
       sum(case when amount < 0 then error('negative amount at ' || cast(ts as varchar)) else amount end)
           as amount
from raw.shop__events
group by 1
"""

FILES = {
    "sources/shop.yml": "kind: files\ntables:\n  events: {path: data/events.csv}\n",
    "data/events.csv": events(),
    "models/marts/daily.sql": DAILY,
    "models/marts/monthly.sql": (
        "-- kind: incremental\n-- time: month\n-- interval: month\n-- start: 2024-01-01\n"
        "select date_trunc('month', day) as month, sum(events) as events, sum(amount) as amount\n"
        "from marts.daily group by 1\n"
    ),
    "models/marts/summary.sql": (
        "-- kind: table\nselect count(*) as days, sum(events) as events from marts.daily\n"
    ),
}

DAILY_ROWS = "select day::varchar as day, events, amount from marts.daily order by 1"
MONTHLY_ROWS = "select strftime(month, '%Y-%m') as month, events, amount from marts.monthly order by 1"


def rows(cli: Cli, root: Path, sql: str) -> list[dict[str, Any]]:
    code, out = cli("query", sql, "--format", "json", project=root)
    assert code == 0, out
    return json.loads(out)


def cells(out: str) -> list[list[str]]:
    """The rows of the table in a command's output, as stripped cells."""
    lines = [line for line in out.splitlines() if "│" in line]
    return [[cell.strip() for cell in line.split("│")] for line in lines]


def between(found: list[dict[str, Any]], first: str, last: str, column: str = "day") -> list[dict[str, Any]]:
    return [row for row in found if first <= row[column] <= last]


@pytest.fixture
def full(tmp_path: Path, cli: Cli) -> Callable[[dict[str, str]], Path]:
    """The same project built by a plain `gristmill run`: what a backfill must match."""

    def build(files: dict[str, str]) -> Path:
        root = tmp_path / "full"
        root.mkdir(exist_ok=True)
        (root / "gristmill.toml").write_text('name = "full"\n')
        write_files(root, files)
        code, out = cli("run", project=root)
        assert code == 0, out
        return root

    return build


def test_backfill_builds_the_range_then_skips_it_then_reprocesses_it(
    make_project: Callable[..., Path], cli: Cli, full: Callable[[dict[str, str]], Path]
) -> None:
    reference = full(FILES)
    expected_daily = rows(cli, reference, DAILY_ROWS)
    expected_monthly = rows(cli, reference, MONTHLY_ROWS)
    root = make_project(FILES)
    selection = ["-s", "+daily", "-s", "monthly", "-s", "summary"]

    code, out = cli("backfill", *selection, "--from", "2024-01-10", "--to", "2024-02-15", project=root)
    assert code == 0, out
    assert "Backfill 1 success: 38 built" in out
    assert "7 days: 2024-01-10..2024-01-16" in out  # a chunk is 7 days by default
    # Exactly the days of the range, as a full build has them; of the months, only February
    # starts in the range.
    assert rows(cli, root, DAILY_ROWS) == between(expected_daily, "2024-01-10", "2024-02-15")
    assert [r["month"] for r in rows(cli, root, MONTHLY_ROWS)] == ["2024-02"]
    recorded = rows(cli, root, "select count(*) as n from _gristmill.intervals where target like '%daily%'")
    assert recorded == [{"n": 37}]
    # The model that is not built by time ran once, at the end, on every day built.
    assert rows(cli, root, "select days from marts.summary") == [{"days": 37}]

    code, out = cli("backfill", *selection, "--from", "2024-01-10", "--to", "2024-02-15", project=root)
    assert code == 0, out
    assert "Backfill 2 success: 38 skipped in 0 runs (nothing to do" in out

    # Only what is missing: the days around the range and January; February stays as it was.
    whole = ["--from", "2024-01-01", "--to", "2024-02-29", "--chunk", "31"]
    code, out = cli("backfill", *selection, *whole, project=root)
    assert code == 0, out
    assert "24 built, 38 skipped" in out
    assert rows(cli, root, DAILY_ROWS) == expected_daily
    assert rows(cli, root, MONTHLY_ROWS)[0] == expected_monthly[0]
    assert rows(cli, root, MONTHLY_ROWS)[1] != expected_monthly[1]  # built from half of February

    code, out = cli("backfill", *selection, *whole, "--reprocess", "all", project=root)
    assert code == 0, out
    assert "Backfill 4 success: 62 built in 4 runs" in out
    assert rows(cli, root, DAILY_ROWS) == expected_daily
    assert rows(cli, root, MONTHLY_ROWS) == expected_monthly
    assert rows(cli, root, "select count(*) - count(distinct day) as dupes from marts.daily") == [
        {"dupes": 0}
    ]

    code, out = cli("backfills", project=root)
    assert code == 0, out
    assert "+daily monthly summary --reprocess all --chunk 31" in out and "62 success" in out
    assert "2024-01-10..2024-02-15" in out and "38 skipped" in out
    code, out = cli("backfills", "2", project=root)
    assert code == 0, out
    assert cells(out) == [
        ["marts.daily", "2024-01-10..2024-02-15", "37", "skipped", "", ""],
        ["marts.monthly", "2024-02", "1", "skipped", "", ""],
    ]


def test_a_failing_chunk_fails_its_intervals_and_resume_builds_only_those(
    make_project: Callable[..., Path], cli: Cli, full: Callable[[dict[str, str]], Path]
) -> None:
    expected = rows(cli, full(FILES), DAILY_ROWS)
    # Bad rows from Feb 5 to Feb 11: the sixth chunk of 7 days fails, whole.
    root = make_project({**FILES, "data/events.csv": events((date(2024, 2, 5), date(2024, 2, 11)))})
    selection = ["-s", "+daily", "-s", "monthly", "-s", "summary"]

    code, out = cli("backfill", *selection, "--from", "2024-01-01", "--to", "2024-02-29", project=root)
    assert code == 1, out
    assert "7 days: 2024-02-05..2024-02-11  failed" in out
    assert "negative amount at 2024-02-05" in out
    assert "Backfill 1 failed: 54 built, 8 failed" in out
    assert "gristmill backfill --resume 1" in out
    assert len(rows(cli, root, DAILY_ROWS)) == 53
    code, out = cli("backfills", "1", project=root)
    assert code == 0, out
    table = cells(out)
    assert [row[:5] for row in table] == [
        ["marts.daily", "2024-01-01..2024-02-04", "35", "success", "1-5"],
        ["marts.daily", "2024-02-05..2024-02-11", "7", "failed", "6"],
        ["marts.daily", "2024-02-12..2024-02-29", "18", "success", "7-9"],
        ["marts.monthly", "2024-01", "1", "success", "10"],
        ["marts.monthly", "2024-02", "1", "failed", ""],
    ]
    assert table[1][5].startswith("models/marts/daily.sql: the engine rejected the model")
    # February of the monthly model reads the failed days: not run; the summary waits for all.
    assert table[4][5] == "not run: marts.daily failed here"
    code, out = cli("query", "select * from marts.summary", project=root)
    assert code != 0

    (root / "data" / "events.csv").write_text(events())
    code, out = cli("backfill", "--resume", "1", project=root)
    assert code == 0, out
    ran = [line for line in out.splitlines() if line.strip().startswith("run ")]
    assert len(ran) == 3, out  # the failed week, February's month, then the summary
    assert "7 days: 2024-02-05..2024-02-11  success" in ran[0]
    assert "1 month: 2024-02  success" in ran[1]
    assert "Backfill 1 success: 62 built in 3 runs" in out
    assert rows(cli, root, DAILY_ROWS) == expected
    assert rows(cli, root, "select days, events::int as events from marts.summary") == [
        {"days": 60, "events": 180}
    ]


def test_resume_after_the_model_is_fixed_fills_its_new_version(
    make_project: Callable[..., Path], cli: Cli, full: Callable[[dict[str, str]], Path]
) -> None:
    expected = rows(cli, full(FILES), DAILY_ROWS)
    broken = DAILY.replace(
        "count(*) as events",
        "count(case when ts >= '2024-02-01' then error('not yet') end) + count(*) as events",
    )
    root = make_project({**FILES, "models/marts/daily.sql": broken})
    code, out = cli("backfill", "-s", "+daily", "--from", "2024-01-20", "--to", "2024-02-09", project=root)
    assert code == 1, out
    assert "Backfill 1 failed: 7 built, 14 failed" in out

    # The fixed model is a new version, built into a table of its own: the resume builds every
    # interval of the range into it, the ones that had succeeded too.
    (root / "models" / "marts" / "daily.sql").write_text(DAILY)
    code, out = cli("backfill", "--resume", "1", project=root)
    assert code == 0, out
    assert "Backfill 1 success: 21 built" in out
    assert rows(cli, root, DAILY_ROWS) == between(expected, "2024-01-20", "2024-02-09")


def test_a_selection_without_time_range_models_is_refused(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES)
    code, out = cli(
        "backfill", "-s", "summary", "-s", "raw.shop__events", "--from", "2024-01-01", project=root
    )
    assert code == 2, out
    assert "nothing to backfill" in out and "marts.summary" in out and "`time:` and `interval:`" in out
    code, out = cli("backfill", "-s", "daily", project=root)
    assert code == 2 and "--from" in out
    code, out = cli("backfill", "-s", "daily", "--from", "2024-02-01", "--to", "2024-01-01", project=root)
    assert code == 2 and "must be after the start" in out
    code, out = cli("backfills", "7", project=root)
    assert code == 1 and "no backfill 7" in out


SLOW = """\
import time

from gristmill import model


@model(reads=["raw.shop__events"], kind="incremental", time="day", interval="day", start="2024-01-01")
def slow_daily(events):
    time.sleep(0.3)
    return events.query(
        "ev", "select cast(ts as date) as day, count(*) as events, sum(amount) as amount from ev group by 1"
    )
"""


def _successes(root: Path, backfill_id: int) -> int:
    try:
        with sqlite3.connect(root / ".gristmill" / "state.sqlite", timeout=5) as db:
            found = db.execute(
                "SELECT count(*) FROM backfill_partitions WHERE backfill_id = ? AND status = 'success'",
                (backfill_id,),
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(found[0])


def _backfill_until(root: Path, args: list[str], backfill_id: int, successes: int, sig: int) -> int:
    """Run the CLI in a process of its own and send it ``sig`` once ``successes`` intervals of the
    backfill are built; returns its exit code."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "backfill", "-p", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _successes(root, backfill_id) < successes:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the backfill made no progress"
        time.sleep(0.02)
    os.kill(process.pid, sig)
    process.communicate(timeout=60)
    return process.returncode


def test_a_killed_or_interrupted_backfill_resumes_to_the_same_table(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project({**FILES, "models/marts/slow_daily.py": SLOW})
    args = ["-s", "+slow_daily", "--from", "2024-01-01", "--to", "2024-01-08", "--chunk", "1"]

    # Killed outright after the first day: the run building the next one dies mid-transaction.
    assert _backfill_until(root, args, 1, 1, signal.SIGKILL) == -signal.SIGKILL
    listed = Workspace(root).backfills(1)[0]
    assert listed.status == "interrupted"
    assert listed.counts.get("pending", 0) >= 6
    code, out = cli("backfills", project=root)
    assert "interrupted" in out

    # Resumed, then Ctrl-C: the run in progress rolls back and the backfill is cancelled.
    assert _backfill_until(root, ["--resume", "1"], 1, listed.counts["success"] + 1, signal.SIGINT) == 130
    cancelled = Workspace(root).backfills(1)[0]
    assert cancelled.status == "cancelled"
    left = cancelled.counts["pending"]
    assert 0 < left < listed.counts["pending"]

    code, out = cli("backfill", "--resume", "1", project=root)
    assert code == 0, out
    assert f"Backfill 1 success: 8 built in {left} runs" in out

    code, out = cli("backfill", "-s", "daily", "--from", "2024-01-01", "--to", "2024-01-08", project=root)
    assert code == 0, out
    same = rows(cli, root, "select count(*) as n from (from marts.daily except all from marts.slow_daily)")
    assert same == [{"n": 0}]
    assert rows(cli, root, "select count(*) as n, count(distinct day) as days from marts.slow_daily") == [
        {"n": 8, "days": 8}
    ]
    history = Workspace(root).runs(50, command="backfill 1")
    assert not any(run.status == "running" for run in history)


# -- the window itself, as the runtime applies it ----------------------------------------------------


def at(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


def test_a_window_builds_only_its_pending_intervals_from_its_start(tmp_path: Path) -> None:
    engine: Engine = open_engine(ProjectSettings(name="t"), tmp_path)
    # No rows on Jan 4; rows from Jan 1 on, yet no `start:`: the window is where building begins.
    engine.write_arrow(
        Relation("raw", "ev"),
        pa.table(
            {"ts": [at(d) + timedelta(hours=3) for d in (1, 2, 3, 5, 6, 7)], "id": [1, 2, 3, 5, 6, 7]}
        ).to_reader(),
    )
    model = ModelSpec(
        asset="m.ev", file="models/m/ev.sql", path=Path("models/m/ev.sql"), sql="", sql_line=1,
        kind="incremental", time="ts", interval="day",
    )  # fmt: skip
    query = sqlglot.parse_one("select ts, id from raw.ev", read="duckdb")
    assert isinstance(query, exp.Query)

    def build(window: tuple[datetime, datetime]) -> list[date]:
        with engine.transaction():
            result = materialize(
                engine,
                model,
                query,
                Relation("m", "ev"),
                incremental=True,
                run_id=1,
                run_time=at(20),
                physical=lambda asset: engine.table(Relation.of(asset)),
                window=window,
            )
        return [start.date() for start, _ in result.intervals]

    assert build((at(3), at(6))) == [date(2024, 1, d) for d in (3, 4, 5)]
    assert engine.query("select id from m.ev order by id").column("id").to_pylist() == [3, 5]
    # The empty day was processed, so it is recorded like the others.
    assert [s.date() for s, _ in read_intervals(engine, "m.ev")] == [date(2024, 1, d) for d in (3, 4, 5)]
    # A wider window: only what is still missing in it, never beyond it.
    assert build((at(1), at(7))) == [date(2024, 1, d) for d in (1, 2, 6)]
    assert engine.query("select id from m.ev order by id").column("id").to_pylist() == [1, 2, 3, 5, 6]
    assert build((at(1), at(7))) == []
    engine.close()
