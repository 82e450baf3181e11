"""Controlling a run from outside, as an operator does: a Python model that drops its connection
is retried; `gristmill cancel`, Ctrl-C and `--timeout` stop a run whatever its signal disposition
and whatever it is stuck in (a DuckDB statement, user Python code), record it cancelled or timed
out, and never publish what was asked to stop. Real processes, a real lake."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill.workspace import Workspace
from tests.conftest import Cli

FLAKY_MODEL = """
import pathlib

import pyarrow as pa

from gristmill import model

HERE = pathlib.Path(__file__).parent


@model()
def flaky():
    left = HERE / "failures_left"
    if int(left.read_text()) > 0:
        left.write_text(str(int(left.read_text()) - 1))
        raise ConnectionError("connection reset by peer")
    return pa.table({"n": [1, 2, 3]})
"""
RETRIES = 'name = "ctl"\n\n[run.retries]\nattempts = 3\ndelay = "0.05s"\n'


def attempts_of(root: Path, run_id: int, asset: str) -> list[tuple[int, str, str | None]]:
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        return db.execute(
            "SELECT attempt, status, error FROM steps WHERE run_id = ? AND asset = ? ORDER BY attempt",
            (run_id, asset),
        ).fetchall()


def test_a_python_model_that_drops_its_connection_is_retried(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project({"models/marts/flaky.py": FLAKY_MODEL}, toml=RETRIES)
    (root / "models" / "marts" / "failures_left").write_text("2")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "retrying marts.flaky" in out and "connection reset by peer" in out
    attempts = attempts_of(root, 1, "marts.flaky")
    assert [(a, s) for a, s, _ in attempts] == [(1, "failed"), (2, "failed"), (3, "success")]
    # The line that raised, not the decorator's.
    assert "models/marts/flaky.py:15: flaky() failed: ConnectionError" in (attempts[0][2] or "")
    assert Workspace(root).query("select sum(n) as n from marts.flaky").to_pylist() == [{"n": 6}]


SLOW_SOURCE = """
import pathlib
import time

import pyarrow as pa

from gristmill.sources import source

HERE = pathlib.Path(__file__).parent


@source(schema=pa.schema([("n", pa.int64())]))
def slow():
    (HERE / "started").write_text("yes")
    for i in range(200):
        time.sleep(0.1)
        yield [{"n": i}]
"""

BUSY_MODEL = """
import pathlib
import time

import pyarrow as pa

from gristmill import model

HERE = pathlib.Path(__file__).parent


@model()
def busy():
    (HERE / "started").write_text("yes")
    end = time.monotonic() + 120
    total = 0
    while time.monotonic() < end:  # pure Python: only a stop raised inside it ends it early
        try:
            total += 1
        except Exception:  # a model that swallows its errors must still stop
            pass
    return pa.table({"n": [total]})
"""

ASLEEP_MODEL = """
import pathlib
import time

import pyarrow as pa

from gristmill import model

HERE = pathlib.Path(__file__).parent


@model()
def asleep():
    (HERE / "started").write_text("yes")
    time.sleep(120)  # one C call: nothing reaches it until it returns
    return pa.table({"n": [1]})
"""


def _gristmill(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "gristmill"), *args]


def _wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ignore_sigint() -> None:
    # What `cmd &` in a non-interactive shell does to the background process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_status(root: Path, run_id: int) -> str:
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        return str(db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])


def _not_published(root: Path, asset: str) -> None:
    with pytest.raises(Exception, match=asset.split(".")[1]):
        Workspace(root).query(f"select count(*) from {asset}")


@pytest.mark.slow  # real processes, stopped and waited for
def test_cancel_stops_a_run_that_ignores_sigint_and_publishes_nothing(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(
        {
            "sources/feed.yml": "kind: python\nmodule: pipelines/feed.py\ntables: [slow]\n",
            "pipelines/feed.py": SLOW_SOURCE,
            "models/marts/slow_count.sql": "select count(*) as n from raw.feed__slow\n",
        }
    )
    with subprocess.Popen(
        _gristmill("run", "--project", str(root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignore_sigint,
    ) as run:
        _wait_for(lambda: (root / "pipelines" / "started").exists(), "the slow load to start")
        code, out = cli("cancel", "1", "--wait", "30", project=root)
        assert code == 0, out
        assert "Run 1 stopped: cancelled" in out
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 1, output
    assert "CANCELLED" in output and "stopping raw.feed__slow" in output
    assert _run_status(root, 1) == "cancelled"
    statuses = {s for _, s, _ in attempts_of(root, 1, "raw.feed__slow")}
    assert statuses == {"cancelled"}
    assert {s for _, s, _ in attempts_of(root, 1, "marts.slow_count")} == {"cancelled"}
    _not_published(root, "raw.feed__slow")
    _not_published(root, "marts.slow_count")


@pytest.mark.slow  # real processes, stopped and waited for
def test_ctrl_c_during_a_python_model_is_acknowledged_and_stops_it_promptly(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"models/marts/busy.py": BUSY_MODEL})
    with subprocess.Popen(
        _gristmill("run", "--project", str(root)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        _wait_for(lambda: (root / "models" / "marts" / "started").exists(), "the model to start")
        asked = time.monotonic()
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
        took = time.monotonic() - asked
    assert "Run 1 stopping (cancelled (interrupted)): stopping marts.busy" in output, output
    assert took < 8, f"{took:.1f}s after Ctrl-C"  # the model would have run for 120 s
    assert run.returncode == 1 and "CANCELLED" in output
    assert _run_status(root, 1) == "cancelled"
    assert [s for _, s, _ in attempts_of(root, 1, "marts.busy")] == ["cancelled"]
    _not_published(root, "marts.busy")


@pytest.mark.slow  # real processes, stopped and waited for
def test_a_model_stuck_in_a_c_call_is_abandoned_after_the_grace_period(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(
        {"models/marts/asleep.py": ASLEEP_MODEL}, toml='name = "ctl"\n\n[run]\nstop_grace = "1s"\n'
    )
    with subprocess.Popen(
        _gristmill("run", "--project", str(root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignore_sigint,
    ) as run:
        _wait_for(lambda: (root / "models" / "marts" / "started").exists(), "the model to start")
        code, out = cli("cancel", "1", project=root)
        assert code == 0 and "Run 1 stopped: cancelled" in out, out
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 1, output
    assert "marts.asleep did not stop when asked" in output
    assert _run_status(root, 1) == "cancelled"
    [(_, status, error)] = attempts_of(root, 1, "marts.asleep")
    assert status == "cancelled" and "did not stop within 1s" in (error or "")
    _not_published(root, "marts.asleep")


@pytest.mark.slow  # real processes, stopped and waited for
def test_timeout_stops_a_long_engine_statement(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/quick.sql": "select 1 as n\n",
            "models/marts/huge.sql": "select count(*) as n from range(1000000) a, range(1000000) b"
            " where (a.range * b.range) % 7 = 3\n",
        }
    )
    started = time.monotonic()
    done = subprocess.run(
        _gristmill("run", "--project", str(root), "--timeout", "3s"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stdout + done.stderr
    assert "time limit (3s) passed" in done.stdout + done.stderr
    assert _run_status(root, 1) == "cancelled"
    assert [s for _, s, _ in attempts_of(root, 1, "marts.huge")] == ["cancelled"]
    _not_published(root, "marts.huge")


@pytest.mark.slow  # real processes, stopped and waited for
def test_timeout_ends_a_run_whose_engine_statement_ignores_the_interrupt(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """A statement blocked in I/O (here: reading a pipe nobody writes, as the S3 read stuck in
    DuckDB's JSON detection was) does not answer DuckDB's interrupt: the run still ends."""
    fifo = tmp_path / "never_written.csv"
    os.mkfifo(fifo)
    root = make_project(
        {"models/marts/stuck.sql": f"select * from read_csv('{fifo.as_posix()}', columns={{'n': 'INT'}})\n"},
        toml='name = "ctl"\n\n[run]\nstop_grace = "1s"\n',
    )
    started = time.monotonic()
    done = subprocess.run(
        _gristmill("run", "--project", str(root), "--timeout", "2s"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "marts.stuck did not stop when asked" in output
    assert _run_status(root, 1) == "cancelled"
    [(_, status, error)] = attempts_of(root, 1, "marts.stuck")
    assert status == "cancelled" and "did not stop within 1s" in (error or ""), error


def test_the_time_limit_ends_a_process_stuck_before_its_first_step() -> None:
    """Planning reads sources' schemas (the S3 read that deadlocked in DuckDB's JSON detection was
    one), out of the runner's reach: the run command's watchdog ends the process at the limit."""
    script = (
        "import time\n"
        "from gristmill.cli.app import _start_watchdog\n"
        "_start_watchdog(1.0, 0.0, 0.5)\n"
        "time.sleep(60)  # stuck in a C call, as a deadlocked read is\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert "did not get to its first step within its time limit (1 s)" in done.stderr, done.stderr
    assert "nothing was written" in done.stderr
