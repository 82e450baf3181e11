"""What `gristmill streams` and /metrics say of stream processes: a process the consumer group
gives no partition stops when told to stop on idleness (and says why), a killed one is dead (not
stopped), old ones age out of the list, and the watermark is the point windows close at."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gristmill.server.metrics import _stream_families
from gristmill.workspace.streams import process_state, read_statuses, status_folder
from tests.conftest import Cli
from tests.e2e.test_streaming import GRISTMILL, START, generate, produce, project, stream, windows_of
from tests.support import kafka_broker as broker_fixtures
from tests.support.kafka_broker import MockKafka

kafka_broker = broker_fixtures.kafka_broker  # the session's mock cluster, as a fixture here
pytestmark = pytest.mark.slow  # stream processes against a broker, for seconds each

PASSTHROUGH = """\
-- kind: stream
select user_id, amount from raw.shop__events
"""


def _status_of(root: Path, pid: int) -> dict[str, Any] | None:
    path = status_folder(root) / f"marts.per_minute-{pid}.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found


def _state(root: Path, pid: int) -> str:
    return next(s["state"] for s in read_statuses(root) if s["pid"] == pid)


def test_a_process_given_no_partition_stops_and_a_killed_one_is_dead(
    kafka_broker: MockKafka, tmp_path: Path, cli: Cli
) -> None:
    topic = f"single_{random.randrange(1 << 30)}"
    kafka_broker.create_topic(topic, 1)  # one partition: a second member of the group gets none
    produce(kafka_broker.bootstrap, topic, generate(50))
    root = project(tmp_path, kafka_broker.bootstrap, topic, PASSTHROUGH)
    owner = subprocess.Popen(
        [*GRISTMILL, "stream", "marts.per_minute", "--project", str(root), "--max-wait", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (_status_of(root, owner.pid) or {}).get("events"):
            assert owner.poll() is None and time.monotonic() < deadline, "the first process never got going"
            time.sleep(0.2)

        started = time.monotonic()
        done = stream(root, "--stop-when-idle", "3", "--max-wait", "0.2", timeout=90)
        took = time.monotonic() - started
        assert done.returncode == 1, done.stdout + done.stderr
        wanted = r"no partition of raw.shop__events was assigned to this process for (\d+) s"
        said = re.search(wanted, done.stderr)
        assert said is not None and 3 <= int(said.group(1)) <= 5, done.stderr
        assert "Traceback" not in done.stderr
        assert took < 45  # the group's join (a few seconds) plus the 3 s, not for ever

        code, out = cli("streams", project=root)
        assert code == 0, out
        assert _state(root, owner.pid) == "running"
        failed = [s for s in read_statuses(root) if s["pid"] != owner.pid]
        assert [s["state"] for s in failed] == ["failed"]
        assert "failed" in out and "no partition" in out

        owner.send_signal(signal.SIGKILL)  # no word from it: its file still says it runs
        owner.wait(10)
        assert _status_of(root, owner.pid) and not _status_of(root, owner.pid).get("stopped")  # type: ignore[union-attr]
        assert _state(root, owner.pid) == "dead"
        code, out = cli("streams", project=root)
        assert "dead" in out
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)


def test_states_heartbeats_and_retention(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "gristmill.toml").write_text('name = "p"\n')
    folder = status_folder(tmp_path)
    folder.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    now = time.time()
    base = {"model": "marts.m", "events": 10, "rows_out": 1, "late": 0, "rejected": 0, "lag": {"t[0]": 4}}
    statuses = {
        "running": {"pid": os.getpid(), "updated_at": now},
        "killed": {"pid": gone.pid, "updated_at": now},  # its pid is gone: dead
        "hung or reused pid": {"pid": os.getpid(), "updated_at": now - 600},
        "long --max-wait": {"pid": os.getpid(), "updated_at": now - 600, "max_wait": 300},
        "other host, fresh": {"pid": 1, "host": "elsewhere.example", "updated_at": now - 5},
        "other host, silent": {"pid": 1, "host": "elsewhere.example", "updated_at": now - 600},
        "stopped": {"pid": gone.pid, "updated_at": now - 60, "stopped": True},
        "failed": {"pid": gone.pid, "updated_at": now - 60, "stopped": True, "error": "boom"},
        "stopped long ago": {"pid": gone.pid, "updated_at": now - 8 * 86400, "stopped": True},
        "killed long ago": {"pid": gone.pid, "updated_at": now - 30 * 86400},
    }
    expected = {
        "running": "running",
        "killed": "dead",
        "hung or reused pid": "stalled",
        "long --max-wait": "running",
        "other host, fresh": "running",
        "other host, silent": "dead",
        "stopped": "stopped",
        "failed": "failed",
        "stopped long ago": "stopped",
        "killed long ago": "dead",
    }
    for n, (name, status) in enumerate(statuses.items()):
        (folder / f"marts.m-{n}.json").write_text(json.dumps({**base, **status, "model": name}))
        assert process_state({**base, **status}, now) == expected[name], name
    shown = {s["model"]: s["state"] for s in read_statuses(tmp_path, everything=False)}
    assert shown == {k: v for k, v in expected.items() if "long ago" not in k}
    assert {s["model"] for s in read_statuses(tmp_path)} == set(expected)

    code, out = cli("streams", project=tmp_path)
    assert code == 0, out
    assert "long ago" not in out and "killed" in out and "boom" in out
    code, out = cli("streams", "--all", project=tmp_path)
    assert code == 0, out
    assert "stopped long ago" in out and "killed long ago" in out


def test_the_watermark_is_where_windows_close_and_the_newest_event_has_its_own_gauge(
    kafka_broker: MockKafka, tmp_path: Path
) -> None:
    topic = f"marks_{random.randrange(1 << 30)}"
    kafka_broker.create_topic(topic, 2)
    events = generate(400)
    produce(kafka_broker.bootstrap, topic, events)
    root = project(tmp_path, kafka_broker.bootstrap, topic)  # tumble 1 minute, lateness 5 s
    done = stream(root, "--stop-when-idle", "3", "--max-wait", "0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    (status,) = read_statuses(root)
    newest = datetime.fromisoformat(status["newest_event"])
    watermark = datetime.fromisoformat(status["watermark"])
    assert newest == START + timedelta(days=1)  # the sentinels
    # Every partition quiet at the end: the watermark moved on with the clock from the newest
    # event less the lateness (5 s), by about the idle time (3 s); before, it said the newest
    # event time itself.
    assert newest - timedelta(seconds=5) <= watermark < newest
    assert windows_of(root)  # the windows ending before it were emitted

    metrics = {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(_exposition([status]))
        if family.samples
    }
    assert metrics["gristmill_stream_watermark_timestamp_seconds"] == _epoch(watermark)
    assert metrics["gristmill_stream_newest_event_timestamp_seconds"] == _epoch(newest)
    assert metrics["gristmill_stream_up"] == 0.0  # it stopped


def _epoch(value: datetime) -> float:
    return (value - datetime(1970, 1, 1)).total_seconds()


def _exposition(statuses: list[dict[str, Any]]) -> str:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    class Streams(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from _stream_families(tuple(statuses))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Streams())
    return generate_latest(registry).decode()
