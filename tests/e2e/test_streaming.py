"""`gristmill stream` against a real Kafka-protocol broker (librdkafka's mock cluster): windows in
SQL, late and bad messages kept, idle partitions, exactly once through kill -9 at many points, and
two processes sharing a topic through a rebalance."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from confluent_kafka import Producer

from gristmill.errors import GristmillError
from gristmill.workspace import Workspace
from tests.conftest import Cli
from tests.support import crashing
from tests.support import kafka_broker as broker_fixtures
from tests.support.kafka_broker import MockKafka

kafka_broker = broker_fixtures.kafka_broker  # the session's mock cluster, as a fixture here

GRISTMILL = [sys.executable, "-m", "gristmill"]
START = datetime(2024, 5, 1, 10, 0, 0)

WINDOWED = """\
-- kind: stream
-- time: event_time
-- window: tumble 1 minute
-- lateness: 5s
-- idle_timeout: 2s
select user_id, window_start, window_end, sum(amount) as amount, count(*) as events
from raw.shop__events
group by all
"""


def source(bootstrap: str, topic: str, group: str) -> str:
    return (
        f"kind: kafka\nbrokers: {bootstrap}\ngroup: {group}\n"
        f"options: {{session.timeout.ms: 2000, heartbeat.interval.ms: 100}}\n"
        f"tables:\n  events:\n    topic: {topic}\n"
        "    columns: {user_id: bigint, amount: double, event_time: timestamp}\n"
    )


@pytest.fixture
def topic(kafka_broker: MockKafka, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{request.node.name[:40]}_{random.randrange(1 << 30)}"
    kafka_broker.create_topic(name, 4)
    yield name


def produce(bootstrap: str, topic: str, events: list[dict[str, Any] | bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for event in events:
        if isinstance(event, bytes):
            producer.produce(topic, event, key=b"bad")
        else:
            producer.produce(topic, json.dumps(event).encode(), key=str(event["user_id"]).encode())
    assert producer.flush(30) == 0


def generate(count: int, *, seed: int = 7, users: int = 20, step_ms: int = 50) -> list[dict[str, Any]]:
    """Events a ``step_ms`` apart with up to 2 s of disorder, then one far-ahead sentinel per
    user so every partition's watermark passes every real window."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        at = START + timedelta(milliseconds=n * step_ms - rng.randint(0, 2000))
        events.append(
            {
                "user_id": rng.randint(1, users),
                "amount": round(rng.uniform(1, 100), 2),
                "event_time": at.isoformat(),
            }
        )
    far = (START + timedelta(days=1)).isoformat()
    events += [{"user_id": u, "amount": 0.0, "event_time": far} for u in range(1, users + 1)]
    return events


def expected_windows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    produced = pa.Table.from_pylist([e for e in events if isinstance(e, dict)])  # noqa: F841 - read by DuckDB
    rows = duckdb.sql(
        "select user_id, time_bucket(interval 1 minute, event_time::timestamp) as w, "
        "round(sum(amount), 2), count(*) from produced "
        "where event_time::timestamp < timestamp '2024-05-02' group by all order by all"
    ).fetchall()
    return [tuple(r) for r in rows]


def windows_of(root: Path) -> list[tuple[Any, ...]]:
    found = Workspace(root).query(
        "select user_id, window_start as w, round(sum(amount), 2), sum(events)::bigint from marts.per_minute "
        "where window_start < timestamp '2024-05-02' group by all order by all"
    )
    return [tuple(r.values()) for r in found.to_pylist()]


def project(tmp_path: Path, bootstrap: str, topic: str, model: str = WINDOWED, name: str = "p") -> Path:
    root = tmp_path / name
    (root / "sources").mkdir(parents=True)
    (root / "models" / "marts").mkdir(parents=True)
    (root / "gristmill.toml").write_text(f'name = "{name}"\n')
    (root / "sources" / "shop.yml").write_text(source(bootstrap, topic, f"g-{topic}-{name}"))
    (root / "models" / "marts" / "per_minute.sql").write_text(model)
    return root


def stream(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    crash: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``gristmill stream`` of the project's model; with ``crash`` (``phase:N``), killed at that
    point (``tests/support/crashing.py``)."""
    command = crashing.command(crash) if crash else GRISTMILL
    return subprocess.run(
        [*command, "stream", "marts.per_minute", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(crashing.environment() if crash else {}), **(env or {})},
    )


def test_tumbling_windows_late_and_bad_messages(
    kafka_broker: MockKafka, topic: str, tmp_path: Path, cli: Cli
) -> None:
    events = generate(3000)
    produce(kafka_broker.bootstrap, topic, [*events[:-20], b"{not json", b'{"user_id": "x"}', *events[-20:]])
    root = project(tmp_path, kafka_broker.bootstrap, topic)
    done = stream(root, "--stop-when-idle", "4", "--batch-size", "500", "--max-wait", "0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rejected" in done.stdout
    assert windows_of(root) == expected_windows(events)

    rejected = (
        Workspace(root)
        .query("select reason, value from _gristmill.stream_rejected order by reason")
        .to_pylist()
    )
    assert [r["value"] for r in rejected] == [b'{"user_id": "x"}', b"{not json"]
    assert rejected[1]["reason"].startswith("not JSON")

    # A late event (its window was emitted long ago) lands in the late table, counted, not lost.
    late = {"user_id": 1, "amount": 5.0, "event_time": START.isoformat()}
    produce(kafka_broker.bootstrap, topic, [late])
    done = stream(root, "--stop-when-idle", "3", "--max-wait", "0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 late" in done.stdout
    physical = (
        Workspace(root)
        .query(
            "select table_schema, table_name from information_schema.tables "
            "where table_name like 'per_minute__live%__late'"
        )
        .to_pylist()
    )
    assert len(physical) == 1
    assert windows_of(root) == expected_windows(events)  # the emitted windows stay final

    code, out = cli("streams", project=root)
    assert code == 0, out
    assert "marts.per_minute" in out and "stopped" in out


def test_an_idle_partition_does_not_hold_windows_back(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    # Two seconds of events on one key (one partition) of four; the others never speak.
    events = [
        {"user_id": 1, "amount": 1.0, "event_time": (START + timedelta(milliseconds=100 * n)).isoformat()}
        for n in range(40)
    ]
    produce(kafka_broker.bootstrap, topic, events)
    model = WINDOWED.replace("tumble 1 minute", "tumble 1s").replace("lateness: 5s", "lateness: 0s")
    root = project(tmp_path, kafka_broker.bootstrap, topic, model)
    done = stream(root, "--stop-when-idle", "5", "--max-wait", "0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    found = Workspace(root).query("select window_start, events from marts.per_minute order by 1").to_pylist()
    # Every window closed, the last one too: quiet partitions stop holding the watermark and a
    # quiet stream's watermark moves with the clock.
    assert [r["events"] for r in found] == [10, 10, 10, 10]


PHASES = ("decoded", "written", "committed", "acknowledged", "compacted")
CRASH_POINTS = [(PHASES[i % 5], 1 + (i // 5) % 3) for i in range(35)]
"""Where each run is killed: before a batch's transaction, inside it after every write, after
its commit, after the consumer group heard of it — at the first, second or third batch — and
between the tables of a compaction round."""


def test_kill_9_at_many_points_leaves_the_table_a_clean_run_gives(
    kafka_broker: MockKafka,
    topic: str,
    tmp_path: Path,
) -> None:
    events = generate(6000, seed=11)
    # Bad messages among them, undecodable and mistyped: each lands in the dead-letter table
    # once, whatever the kills, in the transaction of its batch.
    bad = [b"\x00\xff not json", b'{"user_id": "x", "amount": 1.0}', b"[1]", b'{"user_id": 1, "amount": "a"}']
    mixed: list[dict[str, Any] | bytes] = list(events)
    for n, at in enumerate(range(100, 5_900, 150)):
        mixed.insert(at, bad[n % len(bad)])
    produce(kafka_broker.bootstrap, topic, mixed)
    flags = ["--batch-size", "50", "--max-wait", "0.1"]
    clean = project(tmp_path, kafka_broker.bootstrap, topic, name="clean")
    done = stream(clean, "--stop-when-idle", "3", *flags, "--compact-every", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    expected = windows_of(clean)
    assert expected == expected_windows(events)

    root = project(tmp_path, kafka_broker.bootstrap, topic, name="crashed")
    config = root / "sources" / "shop.yml"
    flags += ["--compact-every", "2"]  # the clean run never compacts: compaction changes no row
    kills = 0
    for run_number, (phase, n) in enumerate(CRASH_POINTS):
        # A new consumer group each time: a killed member would hold its partitions until its
        # session times out, and the lake, not the group, says where to resume.
        config.write_text(source(kafka_broker.bootstrap, topic, f"crash-{run_number}-{topic}"))
        run = stream(root, "--stop-when-idle", "3", *flags, crash=f"{phase}:{n}")
        assert run.returncode in (0, -signal.SIGKILL), run.stdout + run.stderr
        kills += run.returncode == -signal.SIGKILL
    assert kills >= 33
    config.write_text(source(kafka_broker.bootstrap, topic, f"final-{topic}"))
    done = stream(root, "--stop-when-idle", "3", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert windows_of(root) == expected
    duplicates = (
        Workspace(root)
        .query(
            "select count(*) as n from "
            "(select user_id, window_start from marts.per_minute group by all having count(*) > 1)"
        )
        .to_pylist()
    )
    assert duplicates == [{"n": 0}]
    rejected = (
        Workspace(root)
        .query(
            'select count(*) as n, count(distinct (topic, "partition", "offset")) as distinct_messages '
            "from _gristmill.stream_rejected"
        )
        .to_pylist()
    )
    dead_letters = len(mixed) - len(events)
    assert rejected == [{"n": dead_letters, "distinct_messages": dead_letters}]


def live_files(root: Path) -> dict[str, int]:
    """The data files each of the stream's tables reads now (its table and window partials)."""
    workspace = Workspace(root)
    tables = workspace.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_name like 'per_minute\\_\\_live%' escape '\\'"
    ).to_pylist()
    counts: dict[str, int] = {}
    for table in tables:
        listed = workspace.query(
            f"select count(*) as n from ducklake_list_files('lake', '{table['table_name']}',"
            f" schema => '{table['table_schema']}')"
        ).to_pylist()
        suffix = table["table_name"].rsplit("__", 1)[-1]
        counts["partials" if suffix == "partials" else "table"] = listed[0]["n"]
    return counts


def offset_versions(root: Path) -> int:
    """Rows the lake's catalog holds for the stream offsets: DuckLake keeps small writes inline,
    every version since, and each batch's offset statements read them all."""
    with closing(sqlite3.connect(root / ".gristmill" / "catalog.sqlite")) as catalog:
        inline = catalog.execute(
            "select i.table_name from ducklake_inlined_data_tables i join ducklake_table t"
            " using (table_id) where t.table_name = 'stream_offsets' and t.end_snapshot is null"
        ).fetchall()
        return sum(catalog.execute(f'select count(*) from "{name}"').fetchone()[0] for (name,) in inline)


def test_a_long_stream_keeps_its_offsets_and_files_few(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    # Enough users that a batch's partials are a file (DuckLake keeps up to ten rows inline).
    events = generate(3000, seed=3, users=300)
    produce(kafka_broker.bootstrap, topic, events)
    flags = ["--stop-when-idle", "3", "--batch-size", "50", "--max-wait", "0.1"]
    kept = project(tmp_path, kafka_broker.bootstrap, topic, name="compacted")
    done = stream(kept, *flags, "--compact-every", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert windows_of(kept) == expected_windows(events)
    piled = project(tmp_path, kafka_broker.bootstrap, topic, name="piled")
    done = stream(piled, *flags, "--compact-every", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    # Each of the sixty-odd batches writes a version of its partitions' offsets: all kept
    # inline, or only those since the last compaction (ten batches at most).
    assert offset_versions(piled) >= 60
    assert offset_versions(kept) <= 4 * 10
    assert live_files(kept)["partials"] < live_files(piled)["partials"]
    status = json.loads(next((kept / ".gristmill" / "streams").glob("*.json")).read_text())
    assert status["compacted_at"] is not None


PASSTHROUGH = """\
-- kind: stream
select user_id, amount, event_time, _gm_partition as part, _gm_offset as "offset"
from raw.shop__events
where amount > 0
"""


def test_two_processes_share_the_topic_through_a_rebalance(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    events = generate(6000, seed=5, users=50)
    produce(kafka_broker.bootstrap, topic, events[:3000])
    root = project(tmp_path, kafka_broker.bootstrap, topic, PASSTHROUGH)
    args = [
        *GRISTMILL,
        "stream",
        "marts.per_minute",
        "--project",
        str(root),
        "--batch-size",
        "200",
        "--max-wait",
        "0.1",
    ]
    first = subprocess.Popen(
        [*args, "--stop-when-idle", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(4)
    second = subprocess.Popen(
        [*args, "--stop-when-idle", "6"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(2)
    produce(kafka_broker.bootstrap, topic, events[3000:])
    time.sleep(2)
    first.send_signal(signal.SIGTERM)  # leaves the group: its partitions move to the second
    out_first, _ = first.communicate(timeout=60)
    out_second, _ = second.communicate(timeout=120)
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    took = re.search(r"Stopped marts.per_minute: ([\d,]+) events", out_second)
    assert took is not None and int(took.group(1).replace(",", "")) > 0, out_second  # it took part
    found = (
        Workspace(root)
        .query(
            'select count(*) as n, count(distinct (part, "offset")) as distinct_messages '
            "from marts.per_minute"
        )
        .to_pylist()
    )
    positive = sum(1 for e in events if e["amount"] > 0)
    assert found == [{"n": positive, "distinct_messages": positive}]


HOPPING = """\
-- kind: stream
-- time: event_time
-- window: hop 2 minutes every 1 minute
-- lateness: 5s
select user_id, window_start, window_end, sum(amount) as amount, count(*) as events
from raw.shop__events
group by all
"""

SESSIONS = """\
-- kind: stream
-- time: event_time
-- key: user_id
-- window: session 20s
-- lateness: 5s
select user_id, window_start, window_end, sum(amount) as amount, count(*) as events
from raw.shop__events
group by all
"""


@pytest.mark.parametrize("model", [WINDOWED, HOPPING, SESSIONS], ids=["tumble", "hop", "session"])
def test_one_sql_two_modes_the_stream_equals_the_batch(
    kafka_broker: MockKafka,
    topic: str,
    tmp_path: Path,
    model: str,
) -> None:
    # Sparse users, so sessions both form and break.
    events = generate(1500, seed=3, users=40, step_ms=400)
    produce(kafka_broker.bootstrap, topic, events)
    root = project(tmp_path, kafka_broker.bootstrap, topic, model)
    done = stream(root, "--stop-when-idle", "3", "--batch-size", "200", "--max-wait", "0.1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 late" in done.stdout
    streamed = windows_of(root)
    assert len(streamed) > 50

    # The same model as a batch over the landed topic (in another environment, so the stream's
    # table stays served): the same windows, plus the sentinels' own, never closed by the stream.
    run = subprocess.run(
        [*GRISTMILL, "run", "-s", "+per_minute", "--env", "batch", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    batch = Workspace(root).query(
        "select user_id, window_start as w, round(sum(amount), 2), sum(events)::bigint "
        "from marts__batch.per_minute where window_start < timestamp '2024-05-02' group by all order by all"
    )
    assert [tuple(r.values()) for r in batch.to_pylist()] == streamed


ENRICHED = """\
-- kind: stream
select e.user_id, e.amount, t.tier
from raw.shop__events e
join marts.user_tiers t using (user_id)
"""


def tiers(tier: str, users: int) -> str:
    return f"-- kind: table\nselect range as user_id, '{tier}' as tier from range(1, {users + 1})\n"


def cli(root: Path, *args: str) -> None:
    done = subprocess.run(
        [*GRISTMILL, *args, "--project", str(root)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def tiers_seen(root: Path, expect: int, timeout: float = 60) -> dict[str, int]:
    """Rows per tier in the stream's table once it holds ``expect`` rows."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = Workspace(root).query("select tier, count(*) as n from marts.per_minute group by all")
            counts = {r["tier"]: r["n"] for r in found.to_pylist()}
        except GristmillError:  # the table is created by the stream's first batch
            counts = {}
        if sum(counts.values()) >= expect or time.monotonic() > deadline:
            return counts
        time.sleep(0.3)


def test_a_running_stream_joins_the_table_its_environment_serves_now(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    root = project(tmp_path, kafka_broker.bootstrap, topic, ENRICHED)
    model = root / "models" / "marts" / "user_tiers.sql"
    model.write_text(tiers("silver", 20))
    cli(root, "run", "-s", "marts.user_tiers")
    running = subprocess.Popen(
        [*GRISTMILL, "stream", "marts.per_minute", "--project", str(root), "--max-wait", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Without the far-ahead sentinels generate() adds: counts are what was produced.
        produce(kafka_broker.bootstrap, topic, generate(300, seed=1)[:300])
        assert tiers_seen(root, 300) == {"silver": 300}
        # A new version of the joined model is deployed, and the one it replaces dropped.
        model.write_text(tiers("gold", 20))
        cli(root, "run", "-s", "marts.user_tiers")
        cli(root, "gc")
        produce(kafka_broker.bootstrap, topic, generate(200, seed=2)[:200])
        assert tiers_seen(root, 500) == {"silver": 300, "gold": 200}
    finally:
        running.send_signal(signal.SIGTERM)
        out, _ = running.communicate(timeout=60)
    assert running.returncode == 0, out


def consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < expect and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if not message.error():
                found.append(json.loads(message.value()))
    consumer.close()
    return found


def test_windows_published_to_kafka_at_least_once_through_a_crash(
    kafka_broker: MockKafka,
    topic: str,
    tmp_path: Path,
) -> None:
    events = generate(2000, seed=13)
    produce(kafka_broker.bootstrap, topic, events)
    out_topic = f"{topic}_out"
    kafka_broker.create_topic(out_topic, 1)
    model = WINDOWED.replace("-- idle_timeout: 2s\n", f"-- idle_timeout: 2s\n-- publish: shop.{out_topic}\n")
    root = project(tmp_path, kafka_broker.bootstrap, topic, model)
    # Killed right after its first lake commit, before publishing: the restart publishes it.
    crashed = stream(root, "--stop-when-idle", "3", "--batch-size", "300", crash="committed:2")
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    done = stream(root, "--stop-when-idle", "3", "--batch-size", "300")
    assert done.returncode == 0, done.stdout + done.stderr

    table = (
        Workspace(root)
        .query(
            "select user_id, strftime(window_start, '%Y-%m-%dT%H:%M:%S') as w, amount from marts.per_minute"
        )
        .to_pylist()
    )
    published = consume_all(kafka_broker.bootstrap, out_topic, len(table))
    keys = {(r["user_id"], r["w"], round(r["amount"], 2)) for r in table}
    sent = {
        (m["user_id"], m["window_start"].replace(" ", "T")[:19], round(m["amount"], 2)) for m in published
    }
    assert sent == keys  # every emitted window reached Kafka; none invented
    assert len(published) >= len(table)
    assert Workspace(root).query(
        "select count(*) as n from information_schema.tables where table_name like '%__outbox'"
    ).to_pylist() == [{"n": 1}]
