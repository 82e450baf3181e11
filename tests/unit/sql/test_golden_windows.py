"""Golden SQL of stream windows (``tests/fixtures/sql/streaming/``), and on DuckDB the rows the
SQL written before the windows became ASTs gave."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from gristmill.project.specs import StreamWindow
from gristmill.sql import partial, windows
from gristmill.sql.render import render
from tests.golden import assert_golden

EVENTS = exp.table_("events", db="raw", catalog="lake", quoted=True)
WINDOWS = {
    "tumble": StreamWindow("tumble", timedelta(minutes=5)),
    "hop": StreamWindow("hop", timedelta(minutes=10), timedelta(minutes=5)),
    "session": StreamWindow("session", timedelta(seconds=30)),
    "tumble_sub_second": StreamWindow("tumble", timedelta(milliseconds=250)),
}


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_windowed(name: str) -> None:
    window = WINDOWS[name]
    assert_golden(f"streaming/windowed_{name}", windows.windowed(EVENTS, "event_time", window, ["user_id"]))
    if window.kind != "session":
        assert_golden(f"streaming/last_window_end_{name}", windows.last_window_end("event_time", window))
    assert_golden(f"streaming/first_window_end_{name}", windows.first_window_end("event_time", window))


def test_session_with_known_columns_needs_no_star_exclusion() -> None:
    query = windows.windowed(
        EVENTS, "event_time", WINDOWS["session"], ["user_id"], columns=["user_id", "event_time", "amount"]
    )
    assert_golden("streaming/windowed_session_columns", query)


def test_model_over_a_windowed_stream() -> None:
    model = sqlglot.parse_one(
        "select e.user_id, window_end, sum(e.amount) as total from raw.events as e group by all",
        read="duckdb",
    )
    assert isinstance(model, exp.Query)
    query = windows.replace_table(
        model,
        lambda table: table.name == "events",
        lambda table: windows.windowed(table, "event_time", WINDOWS["hop"], ["user_id"]),
    )
    assert_golden("streaming/model_over_hop", query)


# --- the same rows as before ----------------------------------------------------------------------

_OLD = {
    "tumble": 'SELECT *, time_bucket(to_microseconds(300000000), "event_time") AS window_start, '
    'time_bucket(to_microseconds(300000000), "event_time") + to_microseconds(300000000) '
    "AS window_end FROM ev",
    "hop": 'SELECT * EXCLUDE (_gm_hop), time_bucket(to_microseconds(300000000), "event_time") - '
    "to_microseconds(_gm_hop * 300000000) AS window_start, time_bucket(to_microseconds(300000000), "
    '"event_time") - to_microseconds(_gm_hop * 300000000) + to_microseconds(600000000) AS window_end '
    "FROM ev, range(2) AS _gm_hops(_gm_hop)",
    "session": 'SELECT * EXCLUDE (_gm_new, _gm_session), min("event_time") OVER _gm_s AS window_start, '
    'max("event_time") OVER _gm_s + to_microseconds(30000000) AS window_end FROM (SELECT *, sum(_gm_new) '
    'OVER (PARTITION BY "user_id" ORDER BY "event_time" ROWS UNBOUNDED PRECEDING) AS _gm_session FROM '
    '(SELECT *, CASE WHEN "event_time" - lag("event_time") OVER (PARTITION BY "user_id" ORDER BY '
    '"event_time") < to_microseconds(30000000) THEN 0 ELSE 1 END AS _gm_new FROM ev)) '
    'WINDOW _gm_s AS (PARTITION BY "user_id", _gm_session)',
    "tumble_sub_second": 'SELECT *, time_bucket(to_microseconds(250000), "event_time") AS window_start, '
    'time_bucket(to_microseconds(250000), "event_time") + to_microseconds(250000) AS window_end FROM ev',
}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ev AS SELECT (i % 3)::VARCHAR AS user_id, "
        "TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(((i * 7919) % 3600) * 1000000 + i * 137) "
        "AS event_time, i AS amount FROM range(400) AS r(i) "
        "UNION ALL SELECT NULL, NULL, -1 UNION ALL SELECT '1', NULL, -2"
    )
    return con


@pytest.mark.parametrize("name", sorted(_OLD))
def test_duckdb_rows_are_unchanged(con: duckdb.DuckDBPyConnection, name: str) -> None:
    new = render(windows.windowed(exp.table_("ev"), "event_time", WINDOWS[name], ["user_id"]), "duckdb")
    order = "ORDER BY ALL"
    old_rows = con.execute(f"SELECT * FROM ({_OLD[name]}) {order}").fetchall()
    new_rows = con.execute(f"SELECT * FROM ({new}) {order}").fetchall()
    assert old_rows == new_rows and len(old_rows) >= 400
    old_columns = [d[0] for d in con.execute(_OLD[name]).description]
    assert [d[0] for d in con.execute(new).description] == old_columns


def test_duckdb_session_with_columns_matches(con: duckdb.DuckDBPyConnection) -> None:
    columns = ["user_id", "event_time", "amount"]
    new = render(
        windows.windowed(exp.table_("ev"), "event_time", WINDOWS["session"], ["user_id"], columns), "duckdb"
    )
    assert (
        con.execute(f"SELECT * FROM ({new}) ORDER BY ALL").fetchall()
        == con.execute(f"SELECT * FROM ({_OLD['session']}) ORDER BY ALL").fetchall()
    )


@pytest.mark.parametrize("name", ["tumble", "hop"])
def test_duckdb_window_ends_are_unchanged(con: duckdb.DuckDBPyConnection, name: str) -> None:
    window = WINDOWS[name]
    step = 300000000
    old_first = f'time_bucket(to_microseconds({step}), "event_time") + to_microseconds({step})'
    size = 300000000 if name == "tumble" else 600000000
    old_last = f'time_bucket(to_microseconds({step}), "event_time") + to_microseconds({size})'
    new_first = render(windows.first_window_end("event_time", window), "duckdb")
    new_last = render(windows.last_window_end("event_time", window), "duckdb")
    rows = con.execute(f"SELECT {old_first}, {new_first}, {old_last}, {new_last} FROM ev").fetchall()
    assert all(a == b and c == d for a, b, c, d in rows)


def test_two_phase_aggregation() -> None:
    """A windowed model split into partial aggregates per batch and their merge at close."""
    model = sqlglot.parse_one(
        "select e.user_id, window_end, sum(e.amount) as total, avg(e.amount) as mean, "
        "count(*) filter (where e.amount > 10) as big from stream_batch as e group by all",
        read="duckdb",
    )
    found = partial.split(model)
    assert found is not None and isinstance(model, exp.Select)
    extra = [(exp.cast(exp.column("window_end", table="e"), exp.DataType.Type.TIMESTAMP), "_gm_end")]
    assert_golden("streaming/partials_accumulate", found.partial_select(model, extra))
    state = exp.table_("per_user__partials", db="marts", catalog="lake", quoted=True).as_("s")
    assert_golden(
        "streaming/partials_merge",
        found.final_select(state, ["user_id", "window_end", "total", "mean", "big"]),
    )
