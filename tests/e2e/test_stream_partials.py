"""Windowed stream models kept as partial aggregates (``sql/partial.py``) against the mock Kafka
broker: the stream's windows are the batch build's, the open windows live as a few partial rows
in the ``__partials`` table (or as rows in ``__state`` when the SQL does not decompose), and a
stream stopped with windows open resumes them without losing or repeating one."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gristmill.workspace import Workspace
from tests.e2e import test_streaming as streaming
from tests.e2e.test_streaming import GRISTMILL, generate, produce, project, stream
from tests.support.kafka_broker import MockKafka

kafka_broker = streaming.kafka_broker  # the session's mock cluster, as a fixture here
topic = streaming.topic  # a fresh 4-partition topic per test

USERS = 40
FLAGS = ["--batch-size", "200", "--max-wait", "0.1"]
REAL = "window_start < timestamp '2024-05-02'"
"""The windows of real events; the far-ahead sentinels' windows never close in the stream."""

HOPPING = """\
-- kind: stream
-- time: event_time
-- window: hop 2 minutes every 1 minute
-- lateness: 5s
select user_id, window_start, window_end, avg(amount) as mean, min(amount) as lo, max(amount) as hi,
       max(amount) - min(amount) as spread, count(*) filter (where amount > 50) as big,
       count(*) as events
from raw.shop__events
group by all
having count(*) >= 6
"""
HOPPING_COLUMNS = "user_id, window_start, window_end, round(mean, 6), lo, hi, round(spread, 6), big, events"

DISTINCT_USERS = """\
-- kind: stream
-- time: event_time
-- window: tumble 1 minute
-- lateness: 5s
select window_start, window_end, count(distinct user_id) as users, median(amount) as middle,
       count(*) as events
from raw.shop__events
group by all
"""
DISTINCT_COLUMNS = "window_start, window_end, users, round(middle, 6), events"


def busy_hops(events: list[dict[str, Any]]) -> list[tuple[int, datetime, int]]:
    """(user, window end, events) of each 2-minute window every minute the HAVING keeps,
    counted here in Python; and how many windows it drops."""
    counts: Counter[tuple[int, datetime]] = Counter()
    for event in events:
        at = datetime.fromisoformat(event["event_time"])
        if at < datetime(2024, 5, 2):
            minute = at.replace(second=0, microsecond=0)
            for ahead in (1, 2):
                counts[(event["user_id"], minute + timedelta(minutes=ahead))] += 1
    dropped = sum(1 for n in counts.values() if n < 6)
    assert dropped > 0, "the HAVING drops nothing here, so it proves nothing"
    return sorted((user, end, n) for (user, end), n in counts.items() if n >= 6)


def rows(root: Path, table: str, columns: str) -> list[tuple[Any, ...]]:
    found = Workspace(root).query(f"select {columns} from {table} where {REAL} order by all")
    return [tuple(r.values()) for r in found.to_pylist()]


def batch_build(root: Path, columns: str) -> list[tuple[Any, ...]]:
    """The same model as a batch over the landed topic, in another environment."""
    run = subprocess.run(
        [*GRISTMILL, "run", "-s", "+per_minute", "--env", "batch", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return rows(root, "marts__batch.per_minute", columns)


def companion(root: Path, suffix: str) -> str | None:
    """The live table's ``__partials`` or ``__state`` table, quoted, if it exists."""
    found = (
        Workspace(root)
        .query(
            "select table_schema, table_name from information_schema.tables "
            f"where table_name like 'per_minute__live%\\_\\_{suffix}' escape '\\'"
        )
        .to_pylist()
    )
    assert len(found) <= 1, found
    return f'"{found[0]["table_schema"]}"."{found[0]["table_name"]}"' if found else None


def streamed_to_idle(
    kafka_broker: MockKafka, topic: str, tmp_path: Path, model: str, *, seed: int
) -> tuple[list[Any], Path]:
    """1,500 events produced, the model streamed until the topic is quiet: (events, project)."""
    events = generate(1500, seed=seed, users=USERS, step_ms=400)
    produce(kafka_broker.bootstrap, topic, [*events])
    root = project(tmp_path, kafka_broker.bootstrap, topic, model)
    done = stream(root, "--stop-when-idle", "3", *FLAGS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 late" in done.stdout
    return events, root


def one(root: Path, sql: str) -> dict[str, Any]:
    found = Workspace(root).query(sql).to_pylist()
    assert len(found) == 1
    return found[0]


def test_hopping_avg_min_max_filter_having_equal_the_batch_and_keep_partials(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    events, root = streamed_to_idle(kafka_broker, topic, tmp_path, HOPPING, seed=3)
    streamed = rows(root, "marts.per_minute", HOPPING_COLUMNS)
    assert [(r[0], r[2], r[-1]) for r in streamed] == busy_hops(events)  # the having held
    assert any(r[-2] for r in streamed) and any(not r[-2] for r in streamed)  # the filter counted

    # The open windows (only the sentinels' by now) are partial rows, no event rows.
    assert companion(root, "state") is None
    partials = companion(root, "partials")
    assert partials is not None
    kept = one(
        root,
        f"select count(*) as n, count(distinct (_gm_k0, _gm_end)) as groups, "
        f"min(_gm_end) as first_end from {partials}",
    )
    assert kept["groups"] == USERS * 2  # each sentinel is in two hopping windows
    assert kept["n"] < len(events) / 10
    assert str(kept["first_end"]) > "2024-05-02"  # nothing of an emitted window is left behind

    batch = batch_build(root, HOPPING_COLUMNS)
    assert batch == streamed


def test_a_model_that_does_not_decompose_keeps_rows_and_equals_the_batch(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    _, root = streamed_to_idle(kafka_broker, topic, tmp_path, DISTINCT_USERS, seed=4)
    streamed = rows(root, "marts.per_minute", DISTINCT_COLUMNS)
    assert len(streamed) >= 9
    assert all(1 < r[2] <= USERS for r in streamed)  # distinct users, not events

    assert companion(root, "partials") is None
    state = companion(root, "state")
    assert state is not None
    assert one(root, f"select count(*) as n from {state}") == {"n": USERS}  # the sentinels, still open

    assert batch_build(root, DISTINCT_COLUMNS) == streamed


def test_a_restart_with_windows_open_resumes_their_partials(
    kafka_broker: MockKafka, topic: str, tmp_path: Path
) -> None:
    events = generate(1400, seed=9, users=USERS, step_ms=400)
    half = 700  # the first half ends 4 min 40 s in: the windows ending at 5 and 6 min stay open
    produce(kafka_broker.bootstrap, topic, [*events[:half]])
    root = project(tmp_path, kafka_broker.bootstrap, topic, HOPPING)
    first = stream(root, "--stop-when-idle", "3", *FLAGS)
    assert first.returncode == 0, first.stdout + first.stderr

    emitted = one(root, "select count(*) as n, max(window_end) as last_end from marts.per_minute")
    assert emitted["n"] > 0  # some windows closed in the first run
    partials = companion(root, "partials")
    assert partials is not None
    kept = one(root, f"select count(*) as n, min(_gm_end) as first_end from {partials}")
    assert 0 < kept["n"] < half / 2
    assert kept["first_end"] > emitted["last_end"]

    produce(kafka_broker.bootstrap, topic, [*events[half:]])
    second = stream(root, "--stop-when-idle", "3", *FLAGS)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 late" in second.stdout

    streamed = rows(root, "marts.per_minute", HOPPING_COLUMNS)
    duplicates = one(
        root,
        "select count(*) as n from (select user_id, window_start from marts.per_minute "
        "group by all having count(*) > 1)",
    )
    assert duplicates == {"n": 0}
    assert [(r[0], r[2], r[-1]) for r in streamed] == busy_hops(events)
    assert batch_build(root, HOPPING_COLUMNS) == streamed
    assert companion(root, "state") is None
