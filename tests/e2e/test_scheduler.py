"""`gristmill scheduler` as a real process, observed through its state store and its HTTP port.

What is proven, each time against a scheduler started as a subprocess of the installed CLI:

* cron ticks (seconds-first six-field cron) are claimed once each, on their exact second, and each
  claimed tick starts exactly one run that succeeds;
* webhooks need the bearer token (which never leaks into a response), start one run, and an
  unknown schedule is a 404; ``/metrics`` parses and counts the runs the state store holds;
* a file trigger ignores the files already there and runs once for each new or changed file;
* a freshness policy builds a never-built asset with its upstream at once, and again only once
  it has been older than the limit;
* after downtime, ``catch_up = "latest"`` runs only the newest missed tick and records the older
  ones as skipped; ``"none"`` skips every missed tick except the current one (a tick noticed
  within ``GRACE`` of its time is current, so under a minute of downtime the newest still runs);
  a SIGTERM stops the scheduler cleanly between ticks;
* kill -9 of both the scheduler and its run mid-load: on restart the dead run is marked failed,
  the interrupted tick runs again and the table holds exactly the rows of a clean run.

Waits poll the state store with generous deadlines; no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gristmill.workspace import Workspace
from tests.conftest import write_files

GRISTMILL = str(Path(sys.executable).parent / "gristmill")
DEADLINE = 30.0
TOKEN = "gm-hook-7d1f0c9a5e"

FEED = '''
import time
from pathlib import Path

import pyarrow as pa

from gristmill.sources import source

ROOT = Path(__file__).resolve().parents[1]


@source
def events():
    yield [{"id": i, "kind": "odd" if i % 2 else "even"} for i in range(10)]


@source(schema=pa.schema([("n", pa.int64())]))
def slow():
    """Four batches of five rows; slow_seconds.txt sets the pause between batches."""
    control = ROOT / "slow_seconds.txt"
    pause = float(control.read_text()) if control.exists() else 0.0
    (ROOT / "slow_started.txt").write_text("loading")
    for batch in range(4):
        if batch:
            time.sleep(pause)
        yield [{"n": batch * 5 + i} for i in range(5)]
'''

FILES = {
    "gristmill.toml": 'name = "feed"\n',
    "sources/feed.yml": """
        kind: python
        module: pipelines/feed.py
        tables:
          events: {}
          slow: {}
        """,
    "pipelines/feed.py": FEED,
    "models/marts/totals.sql": "select kind, count(*) as n from raw.feed__events group by kind\n",
    "models/marts/slow_count.sql": "select count(*) as n from raw.feed__slow\n",
    "incoming/a.csv": "id\n1\n",
}

T = TypeVar("T")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


class Scheduler:
    """One `gristmill scheduler` process; its output goes to a log file next to the project."""

    def __init__(self, root: Path, log: Path, env: dict[str, str]) -> None:
        self.root = root
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [GRISTMILL, "scheduler", "--project", str(root), "--port", "0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.url = wait_for(self._url, "the scheduler to print its URL", self)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _url(self) -> str | None:
        found = re.search(
            r"Scheduler running: .*?, (http://127\.0\.0\.1:\d+) \(Ctrl-C stops\)", self.output()
        )
        return found.group(1) if found else None

    def stop(self) -> int:
        """SIGTERM, then wait for the process to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the scheduler ignored SIGTERM:\n{self.output()}") from None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def wait_for(check: Callable[[], T | None], what: str, scheduler: Scheduler | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = check()
        if found:
            return found
        log = f"\nscheduler output:\n{scheduler.output()}" if scheduler is not None else ""
        if scheduler is not None and scheduler.process.poll() is not None:
            raise AssertionError(f"the scheduler exited while waiting for {what}{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}{log}")
        time.sleep(0.1)


def state(root: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    """Rows of the project's state store, read the way any other process would."""
    db = sqlite3.connect(root / ".gristmill" / "state.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def runs_of(root: Path, schedule: str, status: str | None = None) -> list[sqlite3.Row]:
    return state(
        root,
        "SELECT * FROM runs WHERE command = ? AND (? IS NULL OR status = ?) ORDER BY run_id",
        f"schedule {schedule}",
        status,
        status,
    )


def ticks_of(root: Path, schedule: str, after: str = "") -> list[sqlite3.Row]:
    return state(
        root, "SELECT * FROM ticks WHERE schedule = ? AND tick_at > ? ORDER BY tick_at", schedule, after
    )


def succeeded_ticks(root: Path, schedule: str, after: str = "") -> list[sqlite3.Row]:
    return [tick for tick in ticks_of(root, schedule, after) if tick["status"] == "success"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def built_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The feed project with raw.feed__events and marts.totals built once (raw.feed__slow is not)."""
    root = write_files(tmp_path_factory.mktemp("feed") / "proj", FILES)
    env = _env(GRISTMILL_EXTENSION_REPO=str(tmp_path_factory.getbasetemp() / "extensions"))
    done = subprocess.run(
        [GRISTMILL, "run", "--project", str(root), "--select", "+marts.totals"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def feed(built_feed: Path, tmp_path: Path) -> Callable[..., Path]:
    """A copy of the feed project with these schedules; ``built=False``: nothing built yet."""

    def make(toml: str, *, built: bool = True) -> Path:
        root = tmp_path / "proj"
        if built:
            shutil.copytree(built_feed, root)
        else:
            write_files(root, FILES)
        (root / "gristmill.toml").write_text('name = "feed"\n' + textwrap.dedent(toml))
        return root

    return make


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Callable[..., Scheduler]]:
    """Starts schedulers (``scheduler(root, VAR=value)`` adds to the environment); stops them after."""
    started: list[Scheduler] = []

    def start(root: Path, **env: str) -> Scheduler:
        log = tmp_path / f"scheduler{len(started) + 1}.log"
        started.append(Scheduler(root, log, _env(**env)))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.terminate()
            try:
                process.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_cron_ticks_run_once_each_on_their_second(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    root = feed(
        """
        [schedules.tick]
        cron = "*/2 * * * * *"
        select = ["marts.totals"]
        """
    )
    process = scheduler(root)
    wait_for(lambda: len(runs_of(root, "tick", "success")) >= 2, "two successful ticks", process)
    assert process.stop() == 0

    ticks = ticks_of(root, "tick")
    runs = {run["run_id"]: run for run in runs_of(root, "tick")}
    assert len(ticks) >= 2
    assert len({tick["tick_at"] for tick in ticks}) == len(ticks)
    assert sorted(runs) == sorted(tick["run_id"] for tick in ticks), "one run per tick, no run without one"
    for tick in ticks:
        tick_at = at(tick["tick_at"])
        assert tick["status"] == "success", dict(tick)
        assert tick_at.microsecond == 0 and tick_at.second % 2 == 0, tick["tick_at"]
        run = runs[tick["run_id"]]
        assert run["status"] == "success" and run["selection"] == "marts.totals"
        for started in (at(tick["started_at"]), at(run["started_at"])):
            assert tick_at <= started < tick_at + timedelta(seconds=5), dict(tick)


def test_a_paused_schedule_skips_its_ticks_until_resumed(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    from gristmill.state import open_history

    root = feed(
        """
        [schedules.tick]
        cron = "*/2 * * * * *"
        select = ["marts.totals"]
        """
    )
    history = open_history(root / ".gristmill" / "state.sqlite")
    try:
        history.schedules.set_paused("tick", True)  # what the web UI's Pause button does
        process = scheduler(root)
        wait_for(lambda: len(ticks_of(root, "tick")) >= 2, "two paused ticks", process)
        assert runs_of(root, "tick") == []
        assert {(t["status"], t["note"]) for t in ticks_of(root, "tick")} == {("skipped", "paused")}
        history.schedules.set_paused("tick", False)
        wait_for(lambda: runs_of(root, "tick", "success"), "a run once resumed", process)
    finally:
        history.close()
    assert process.stop() == 0


def test_webhook_needs_the_token_starts_a_run_and_metrics_count_it(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    root = feed(
        """
        [server]
        token = "${env:GM_HOOK_TOKEN}"

        [schedules.hook]
        webhook = true
        select = ["marts.totals"]
        """
    )
    process = scheduler(root, GM_HOOK_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=process.url, timeout=10) as client:
        refused = [
            client.post("/hooks/hook"),
            client.post("/hooks/hook", headers={"Authorization": "Bearer not-the-token"}),
        ]
        assert [response.status_code for response in refused] == [401, 401]
        assert runs_of(root, "hook") == []

        accepted = client.post("/hooks/hook", headers=auth, json={"reason": "orders landed"})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"accepted": True, "run": "hook"}
        (tick,) = wait_for(lambda: succeeded_ticks(root, "hook"), "the webhook's run", process)
        (run,) = runs_of(root, "hook", "success")
        assert tick["run_id"] == run["run_id"] and tick["note"] == "webhook (orders landed)"

        unknown = client.post("/hooks/nope", headers=auth)
        assert unknown.status_code == 404
        assert "hook" in unknown.json()["error"]

        metrics = client.get("/metrics")
        assert metrics.status_code == 200
    for response in [*refused, accepted, unknown, metrics]:
        assert TOKEN not in response.text
    assert TOKEN not in process.output()

    samples = {
        (sample.name, sample.labels.get("status")): sample.value
        for family in text_string_to_metric_families(metrics.text)
        for sample in family.samples
    }
    succeeded = len(state(root, "SELECT run_id FROM runs WHERE status = 'success'"))
    assert samples[("gristmill_runs_total", "success")] == succeeded >= 2  # the build and the hook
    assert samples[("gristmill_scheduler_up", None)] == 1
    assert len(runs_of(root, "hook")) == 1


def test_new_and_changed_files_each_trigger_one_run(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    root = feed(
        """
        [schedules.files]
        on_files = "incoming/*.csv"
        select = ["marts.totals"]
        """
    )
    process = scheduler(root)

    def watching() -> bool:
        return bool(
            state(root, "SELECT 1 FROM schedule_state WHERE schedule = 'files' AND cursor IS NOT NULL")
        )

    wait_for(watching, "the first listing of incoming/", process)
    assert runs_of(root, "files") == [] and ticks_of(root, "files") == []  # a.csv was there already

    (root / "incoming" / "b.csv").write_text("id\n2\n")
    (first,) = wait_for(lambda: runs_of(root, "files", "success"), "a run for b.csv", process)
    (root / "incoming" / "a.csv").write_text("id\n1\n3\n")
    wait_for(lambda: len(runs_of(root, "files", "success")) == 2, "a run for the changed a.csv", process)
    assert process.stop() == 0

    ticks = ticks_of(root, "files")
    assert [tick["note"] for tick in ticks] == ["file b.csv", "file a.csv"]
    assert [tick["run_id"] for tick in ticks] == [run["run_id"] for run in runs_of(root, "files")]
    assert ticks[0]["run_id"] == first["run_id"]


def test_freshness_builds_a_stale_asset_with_its_upstream_and_again_once_it_is_stale(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    root = feed(
        """
        [schedules.fresh]
        freshness = "3s"
        select = ["marts.totals"]
        """,
        built=False,
    )
    process = scheduler(root)
    wait_for(lambda: len(runs_of(root, "fresh", "success")) >= 2, "two freshness runs", process)
    assert process.stop() == 0

    first, second = runs_of(root, "fresh")[:2]
    assert first["selection"] == second["selection"] == "+marts.totals"
    built = {row["asset"] for row in state(root, "SELECT asset FROM steps WHERE run_id = ?", first["run_id"])}
    assert built == {"raw.feed__events", "marts.totals"}
    (fresh_until,) = state(
        root,
        "SELECT finished_at FROM steps WHERE run_id = ? AND asset = 'marts.totals'",
        first["run_id"],
    )
    ticks = {tick["run_id"]: tick for tick in ticks_of(root, "fresh")}
    assert ticks[first["run_id"]]["note"] == "freshness: marts.totals older than 3s"
    # Not started again while the first build was younger than the limit.
    stale_for = at(ticks[second["run_id"]]["tick_at"]) - at(fresh_until["finished_at"])
    assert stale_for >= timedelta(seconds=2.9), stale_for


def _downtime(root: Path, before: str, policy: str) -> None:
    """The ticks after ``before``: the ones missed while the scheduler was down are recorded in one
    claim, oldest first, every one of them skipped except the newest, which ran once."""
    ticks = ticks_of(root, "tick", after=before)
    claim = [tick for tick in ticks if tick["claimed_at"] == ticks[0]["claimed_at"]]
    *missed, newest = claim
    assert len(missed) >= 2, [dict(tick) for tick in ticks]
    expected = [at(before) + timedelta(seconds=2 * n) for n in range(1, len(claim) + 1)]
    assert [at(tick["tick_at"]) for tick in claim] == expected, "each missed tick is recorded once"
    for tick in missed:
        assert tick["status"] == "skipped" and tick["run_id"] is None, dict(tick)
        assert tick["note"] == f"missed while the scheduler was down (catch_up = {policy})"
    assert newest["status"] == "success" and newest["run_id"] is not None, dict(newest)
    assert all(tick["status"] == "success" for tick in ticks[len(claim) :])
    ran = {tick["run_id"] for tick in ticks if tick["run_id"] is not None}
    runs = {run["run_id"] for run in runs_of(root, "tick") if run["started_at"] > newest["claimed_at"]}
    assert ran == runs, "one run per tick that ran, none for a skipped one"


def test_after_downtime_missed_ticks_are_skipped_and_only_the_newest_runs(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    schedule = """
        [schedules.tick]
        cron = "*/2 * * * * *"
        select = ["marts.totals"]
        catch_up = "{policy}"
        """
    root = feed(schedule.format(policy="latest"))

    def last_tick() -> str:
        return str(state(root, "SELECT max(tick_at) FROM ticks WHERE schedule = 'tick'")[0][0])

    first = scheduler(root)
    wait_for(lambda: runs_of(root, "tick", "success"), "a first tick", first)
    assert first.stop() == 0
    assert "Scheduler stopped." in first.output()
    assert {tick["status"] for tick in ticks_of(root, "tick")} == {"success"}
    before = last_tick()

    for policy in ("latest", "none"):
        (root / "gristmill.toml").write_text(
            'name = "feed"\n' + textwrap.dedent(schedule.format(policy=policy))
        )
        time.sleep(6)
        again = scheduler(root)
        wait_for(
            functools.partial(succeeded_ticks, root, "tick", before),
            f"a tick after the downtime (catch_up = {policy})",
            again,
        )
        assert again.stop() == 0
        _downtime(root, before, policy)
        before = last_tick()


def test_a_run_killed_with_its_scheduler_runs_again_after_a_restart_without_duplicates(
    feed: Callable[..., Path], scheduler: Callable[..., Scheduler]
) -> None:
    root = feed(
        """
        [schedules.slowjob]
        webhook = true
        select = ["+marts.slow_count"]
        """
    )
    (root / "slow_seconds.txt").write_text("3")
    process = scheduler(root)
    assert httpx.post(f"{process.url}/hooks/slowjob", timeout=10).status_code == 202

    def loading() -> list[sqlite3.Row]:
        if not (root / "slow_started.txt").exists():
            return []
        return state(
            root,
            "SELECT runs.run_id, runs.pid FROM ticks JOIN runs USING (run_id)"
            " WHERE schedule = 'slowjob' AND runs.status = 'running'",
        )

    ((dead_run, pid),) = wait_for(loading, "the slow load to be under way", process)
    process.kill()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the run process to be gone")

    (root / "slow_seconds.txt").write_text("0")
    restarted = scheduler(root)
    wait_for(
        lambda: succeeded_ticks(root, "slowjob"),
        "the interrupted tick to run again",
        restarted,
    )
    assert restarted.stop() == 0
    assert "marked failed" in restarted.output()

    (tick,) = ticks_of(root, "slowjob")
    assert tick["note"] == "resumed after a restart"
    died, resumed = runs_of(root, "slowjob")
    assert died["run_id"] == dead_run and died["status"] == "failed"
    assert "died" in died["summary"]
    assert resumed["status"] == "success" and tick["run_id"] == resumed["run_id"]

    workspace = Workspace(root)
    try:
        loaded = workspace.query("select count(*) as n, count(distinct n) as keys from raw.feed__slow")
        counted = workspace.query("select n from marts.slow_count")
    finally:
        workspace.close()
    assert loaded.to_pylist() == [{"n": 20, "keys": 20}]  # the four batches of a clean run, once
    assert counted.to_pylist() == [{"n": 20}]
