"""Running a project as an operator sees it: retries of flaky sources, failures that skip what
depends on them, `gristmill retry`, time limits, cancelling a run, one writer at a time, alerts
to a webhook and OpenLineage events. Real processes, a real lake, a real HTTP receiver."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from gristmill.workspace import Workspace
from tests.conftest import Cli

FEED = """
import pathlib
import time

import pyarrow as pa

from gristmill.sources import source

HERE = pathlib.Path(__file__).parent


@source
def events():
    yield [{"id": i, "amount": i * 1.5} for i in range(50)]
    flaky = HERE / "flaky"  # the connection drops mid-read this many times
    if flaky.exists():
        left = int(flaky.read_text())
        if left > 0:
            flaky.write_text(str(left - 1))
            raise ConnectionError("connection reset by peer")
    yield [{"id": i, "amount": i * 1.5} for i in range(50, 100)]


@source(schema=pa.schema([("n", pa.int64())]))
def slow():
    pause = HERE / "pause"
    delay = float(pause.read_text()) if pause.exists() else 0.0
    for i in range(20):
        time.sleep(delay)
        yield [{"n": i * 10 + j} for j in range(10)]
"""

FILES = {
    "sources/feed.yml": "kind: python\nmodule: pipelines/feed.py\nbatch_size: 10\ntables: [events, slow]\n",
    "pipelines/feed.py": FEED,
    "models/marts/totals.sql": "select count(*) as n, sum(amount) as total from raw.feed__events\n",
    "models/marts/big_totals.sql": "select n * 2 as n2 from marts.totals\n",
    "models/marts/slow_count.sql": "select count(*) as n from raw.feed__slow\n",
}
TOML = 'name = "ops"\n\n[run.retries]\nattempts = 3\ndelay = "0.05s"\n'


@pytest.fixture
def ops(make_project: Callable[..., Path]) -> Path:
    return make_project(FILES, toml=TOML)


def steps_of(root: Path, run_id: int) -> list[tuple[str, int, str, str | None]]:
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        return db.execute(
            "SELECT asset, attempt, status, error FROM steps WHERE run_id = ? ORDER BY asset, attempt",
            (run_id,),
        ).fetchall()


def test_a_flaky_source_is_retried_and_the_attempts_are_kept(ops: Path, cli: Cli) -> None:
    (ops / "pipelines" / "flaky").write_text("2")
    code, out = cli("run", project=ops)
    assert code == 0, out
    assert "retrying raw.feed__events" in out and "connection reset by peer" in out
    assert "2 retried" in out
    events = [s for s in steps_of(ops, 1) if s[0] == "raw.feed__events"]
    assert [(a, st) for _, a, st, _ in events] == [(1, "failed"), (2, "failed"), (3, "success")]
    assert "ConnectionError: connection reset by peer" in (events[0][3] or "")
    _, out = cli("history", "1", project=ops)
    assert "failed (attempt 1)" in out and "failed (attempt 2)" in out and "success (attempt 3)" in out
    assert all("(attempt" not in line for line in out.splitlines() if "marts.totals" in line)
    code, out = cli("logs", "1", "raw.feed__events", project=ops)
    assert "attempt 1 failed" in out and "retrying in" in out and "100 rows" in out
    code, out = cli("logs", "1", "--grep", "RETRYING", project=ops)
    assert out.count("retrying in") == 2 and "marts.totals" not in out


def test_a_terminal_failure_is_not_retried_skips_what_depends_on_it_and_retry_reruns_only_that(
    ops: Path, cli: Cli
) -> None:
    (ops / "models" / "marts" / "totals.sql").write_text(
        "select count(*) as n, error('the ledger is closed') as oops from raw.feed__events\n"
    )
    code, out = cli("run", project=ops)
    assert code == 1
    assert "not run: upstream marts.totals failed" in out
    failed = [s for s in steps_of(ops, 1) if s[0] == "marts.totals"]
    assert [(a, st) for _, a, st, _ in failed] == [(1, "failed")]  # an engine error: never retried
    assert "the ledger is closed" in (failed[0][3] or "")
    code, out = cli("runs", "--status", "failed", project=ops)
    assert " 1 " in out and "failed" in out
    (ops / "models" / "marts" / "totals.sql").write_text(FILES["models/marts/totals.sql"])
    code, out = cli("retry", "1", project=ops)
    assert code == 0, out
    ran = {asset for asset, _, status, _ in steps_of(ops, 2) if status != "skipped"}
    assert ran == {"marts.totals", "marts.big_totals"}
    assert Workspace(ops).query("select n2 from marts.big_totals").to_pylist() == [{"n2": 200}]
    _, out = cli("runs", "--command", "retry", project=ops)
    assert "retry 1" in out


def test_a_step_past_its_time_limit_rolls_back_and_the_rest_is_published(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES, toml=TOML + '\n[run]\nstep_timeout = "1s"\n')
    (root / "pipelines" / "pause").write_text("0.2")  # 20 batches: 4 s
    started = time.monotonic()
    code, out = cli("run", project=root)
    assert time.monotonic() - started < 20
    assert code == 1
    slow = [s for s in steps_of(root, 1) if s[0] == "raw.feed__slow"]
    assert slow[-1][2] == "failed" and "timed out after 1s" in (slow[-1][3] or "")
    assert "not run: upstream raw.feed__slow failed" in out
    workspace = Workspace(root)
    assert workspace.query("select n from marts.totals").to_pylist() == [{"n": 100}]
    with pytest.raises(Exception, match=r"feed__slow"):
        workspace.query("select count(*) from raw.feed__slow")


def _gristmill(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "gristmill"), *args]


def _wait_for(condition: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running(root: Path) -> Callable[[], int | None]:
    def check() -> int | None:
        state = root / ".gristmill" / "state.sqlite"
        if not state.exists():
            return None
        with sqlite3.connect(state) as db:
            try:
                row = db.execute(
                    "SELECT r.run_id FROM runs r JOIN step_logs l USING (run_id)"
                    " WHERE r.status = 'running' AND l.asset = 'raw.feed__slow' LIMIT 1"
                ).fetchone()
            except sqlite3.OperationalError:
                return None
        return row[0] if row else None

    return check


def test_cancel_stops_a_run_and_publishes_nothing_half_built(ops: Path, cli: Cli) -> None:
    (ops / "pipelines" / "pause").write_text("0.5")  # 10 s of loading
    with subprocess.Popen(
        _gristmill("run", "--project", str(ops), "--threads", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        run_id = _wait_for(_running(ops), "the slow load to start")
        # Meanwhile one writer at a time: a second run is refused with a clear message.
        code, out = cli("run", project=ops)
        assert code == 1 and "another run" in out and "--wait" in out
        code, out = cli("cancel", str(run_id), project=ops)
        assert code == 0, out
        assert f"Run {run_id} stopped: cancelled" in out
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 1, output
    assert "CANCELLED" in output
    statuses = {asset: status for asset, _, status, _ in steps_of(ops, run_id)}
    assert statuses["raw.feed__slow"] == "cancelled"
    assert statuses["marts.slow_count"] == "cancelled"
    workspace = Workspace(ops)
    with pytest.raises(Exception, match=r"feed__slow"):
        workspace.query("select count(*) from raw.feed__slow")
    (ops / "pipelines" / "pause").unlink()
    code, out = cli("retry", str(run_id), project=ops)
    assert code == 0, out
    assert Workspace(ops).query("select n from marts.slow_count").to_pylist() == [{"n": 200}]


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _Receiver.received
    finally:
        server.shutdown()


def test_failures_and_recoveries_alert_a_webhook_and_runs_emit_openlineage_events(
    make_project: Callable[..., Path],
    cli: Cli,
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = receiver
    monkeypatch.setenv("OPS_HOOK", f"{url}/hooks/T0SECRET")
    toml = TOML + '\n[alerts.team]\nwebhook = "${env:OPS_HOOK}"\n'
    toml += '\n[lineage]\nopenlineage = ".gristmill/lineage.jsonl"\n'
    root = make_project(FILES, toml=toml)
    (root / "models" / "marts" / "totals.sql").write_text("select error('books not balanced') as n\n")
    code, _ = cli("run", project=root)
    assert code == 1
    failure = [m for m in received if m["gristmill"]["kind"] == "failure"]
    assert len(failure) == 1
    assert "marts.totals" in failure[0]["text"] and "books not balanced" in failure[0]["text"]
    assert failure[0]["gristmill"]["run_id"] == 1
    (root / "models" / "marts" / "totals.sql").write_text(FILES["models/marts/totals.sql"])
    code, _ = cli("run", project=root)
    assert code == 0
    recovery = [m for m in received if m["gristmill"]["kind"] == "recovery"]
    assert len(recovery) == 1 and "marts.totals" in recovery[0]["text"]
    assert all("T0SECRET" not in json.dumps(m) for m in received)
    events = [json.loads(line) for line in (root / ".gristmill" / "lineage.jsonl").read_text().splitlines()]
    by_job = {(e["job"]["name"], e["eventType"]) for e in events}
    assert ("ops", "START") in by_job and ("ops", "FAIL") in by_job and ("ops", "COMPLETE") in by_job
    assert ("marts.totals", "FAIL") in by_job and ("marts.totals", "COMPLETE") in by_job
    complete = next(
        e for e in events if e["job"]["name"] == "marts.big_totals" and e["eventType"] == "COMPLETE"
    )
    assert [d["name"] for d in complete["inputs"]] == ["marts.totals"]
    lineage = complete["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert lineage["n2"]["inputFields"][0]["name"] == "marts.totals"
    assert lineage["n2"]["inputFields"][0]["field"] == "n"
