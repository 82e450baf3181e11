"""Controlling a run from outside, as an operator does: a Python model that drops its connection
is retried; `gristmill cancel`, Ctrl-C and `--timeout` stop a run whatever its signal disposition
and whatever it is stuck in (a DuckDB statement, user Python code), record it cancelled or timed
out, and never publish what was asked to stop. Real processes, a real lake."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

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
