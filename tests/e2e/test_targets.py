"""Targets: one project run on several targets, each with its own versions, cursors, history and
run lock; the output says which target (and engine) it worked on."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConcurrentRunError
from gristmill.workspace import Workspace
from tests.conftest import Cli

TOML = """name = "shop"
target = "dev"

[targets.dev]
engine = "duckdb"

[targets.ci]
engine = "duckdb"
threads = 1
"""
FILES = {
    "sources/shop.yml": "kind: files\npath: data/orders.csv\ntables:\n"
    "  orders:\n    incremental: {cursor: order_id}\n    write: append\n",
    "data/orders.csv": "order_id,amount\n1,5.5\n2,7.25\n",
    "models/marts/totals.sql": "select count(*) as orders, sum(amount) as amount from raw.shop__orders\n",
}


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(FILES, toml=TOML)


def _runs_so_far(root: Path, target: str) -> list[str]:
    """``runs_in`` while another process may be creating the history (the file can exist a moment
    before its tables do)."""
    if not (root / ".gristmill" / "targets" / target / "state.sqlite").exists():
        return []
    try:
        return runs_in(root, target)
    except sqlite3.OperationalError:
        return []


def runs_in(root: Path, target: str) -> list[str]:
    """The commands a target's run history holds, oldest first."""
    with sqlite3.connect(root / ".gristmill" / "targets" / target / "state.sqlite") as con:
        return [row[0] for row in con.execute("SELECT status FROM runs ORDER BY run_id")]


def test_each_target_builds_and_records_on_its_own(project: Path, cli: Cli) -> None:
    code, out = cli("run", project=project)
    assert code == 0, out
    assert "target dev (duckdb .gristmill/targets/dev/catalog.sqlite)" in out
    assert "2 built" in out
    code, out = cli("run", project=project)
    assert "0 built, 2 skipped" in out  # the same target: nothing changed
    code, out = cli("run", "--target", "ci", project=project)
    assert code == 0, out
    assert "target ci (duckdb .gristmill/targets/ci/catalog.sqlite)" in out
    assert "2 built" in out  # versions are the target's own: never built there
    assert runs_in(project, "dev") == ["success", "success"]
    assert runs_in(project, "ci") == ["success"]
    assert not (project / ".gristmill" / "catalog.sqlite").exists()  # nothing at the untargeted paths


def test_cursors_are_kept_per_target(project: Path, cli: Cli) -> None:
    assert cli("run", project=project)[0] == 0  # dev's cursor: order 2
    (project / "data" / "orders.csv").write_text("order_id,amount\n1,5.5\n2,7.25\n3,1.25\n")
    assert cli("run", "--target", "ci", project=project)[0] == 0  # from the start, not from order 2
    assert cli("run", project=project)[0] == 0  # from order 2: order 3 added
    for target in ("dev", "ci"):
        _, out = cli(
            "query", "select orders from marts.totals", "-f", "csv", "--target", target, project=project
        )
        assert out.splitlines()[-1] == "3", (target, out)


def test_the_environment_variable_chooses_when_no_flag_does(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_TARGET", "ci")
    code, out = cli("run", project=project)
    assert code == 0 and "target ci (duckdb" in out, out
    code, out = cli("run", "--target", "dev", project=project)
    assert "target dev (duckdb" in out and "2 built" in out
    assert runs_in(project, "ci") == ["success"] and runs_in(project, "dev") == ["success"]


def test_ls_history_and_json_name_the_target(project: Path, cli: Cli) -> None:
    assert cli("run", "-t", "ci", project=project)[0] == 0
    code, out = cli("ls", "--target", "ci", project=project)
    assert "target ci (duckdb .gristmill/targets/ci/catalog.sqlite)" in out and "marts.totals" in out
    code, out = cli("ls", "--target", "ci", "-o", "json", project=project)
    assert json.loads(out)["target"] == "target ci (duckdb .gristmill/targets/ci/catalog.sqlite)"
    code, out = cli("history", "--target", "dev", project=project)
    assert "run" in out and "success" not in out  # dev never ran
    code, out = cli("run", "-t", "nope", project=project)
    assert code == 2 and "--target nope: no such target; gristmill.toml declares ci, dev" in out


def test_run_locks_are_per_target(project: Path) -> None:
    dev, ci = Workspace(project, target="dev"), Workspace(project, target="ci")
    try:
        with dev._session.lock():  # a run of dev is writing
            assert ci.run().ok  # ci is another lake: it runs
            with pytest.raises(ConcurrentRunError):
                Workspace(project, target="dev").run()
    finally:
        dev.close()
        ci.close()


def test_a_project_without_targets_is_unchanged(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(FILES)
    code, out = cli("run", project=root)
    assert code == 0 and "target" not in out
    assert (root / ".gristmill" / "catalog.sqlite").exists() and not (
        root / ".gristmill" / "targets"
    ).exists()
    code, out = cli("run", "--target", "dev", project=root)
    assert code == 2 and "declares no targets" in out


def test_folder_keeps_the_lake_from_before_targets(make_project: Callable[..., Path], cli: Cli) -> None:
    root = make_project(FILES)
    assert cli("run", project=root)[0] == 0
    (root / "gristmill.toml").write_text('name = "shop"\n\n[targets.dev]\nfolder = ".gristmill"\n')
    code, out = cli("run", project=root)
    assert code == 0 and "0 built, 2 skipped" in out, out  # the same lake and history


@pytest.mark.slow
def test_the_scheduler_runs_on_its_target(project: Path) -> None:
    toml = TOML + '\n[schedules.tick]\ncron = "* * * * * *"\nselect = ["+marts.totals"]\n'
    (project / "gristmill.toml").write_text(toml)
    gristmill = str(Path(sys.executable).with_name("gristmill"))
    log = project / "scheduler.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [gristmill, "scheduler", "--project", str(project), "--target", "ci", "--no-http"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        while "success" not in _runs_so_far(project, "ci"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not (project / ".gristmill" / "targets" / "dev" / "state.sqlite").exists()
