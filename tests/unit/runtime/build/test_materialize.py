"""Every model kind built into a real lake (DuckDB over DuckLake), run after run, as a user sees it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.engines import Engine, Relation, open_engine
from gristmill.errors import ConfigError, ProjectError
from gristmill.project.specs import Lookup, ModelSpec
from gristmill.runtime.build.materialize import MaterializeResult, materialize
from gristmill.state.lake.intervals import INTERVALS, read_intervals


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_engine(ProjectSettings(name="t"), tmp_path)


def at(day: int, hour: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def source(engine: Engine, table: str, /, **columns: Any) -> None:
    """Replace ``raw.<name>`` with these columns."""
    engine.write_arrow(Relation("raw", table), pa.table(columns).to_reader())


def spec(asset: str, kind: str, **options: Any) -> ModelSpec:
    schema, name = asset.split(".")
    file = f"models/{schema}/{name}.sql"
    return ModelSpec(asset=asset, file=file, path=Path(file), sql="", sql_line=1, kind=kind, **options)  # type: ignore[arg-type]


def build(
    engine: Engine,
    model: ModelSpec,
    sql: str,
    run_time: datetime,
    *,
    incremental: bool = True,
    run_id: int = 1,
) -> MaterializeResult:
    """One step as the executor runs it: the build inside one transaction."""
    query = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(query, exp.Query)
    with engine.transaction():
        return materialize(
            engine,
            model,
            query,
            Relation.of(model.asset),
            incremental=incremental,
            run_id=run_id,
            run_time=run_time,
            physical=lambda asset: engine.table(Relation.of(asset)),
        )


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    table = engine.query(sql)
    return [tuple(row.values()) for row in table.to_pylist()]


def days(result: MaterializeResult) -> list[tuple[date, date]]:
    return [(start.date(), end.date()) for start, end in result.intervals]


# --- view, table, append ------------------------------------------------------------------------


def test_view_and_table_are_created_from_the_query(engine: Engine) -> None:
    source(engine, "n", x=[1, 2, 3])
    assert build(engine, spec("m.v", "view"), "select x from raw.n where x > 1", at(1)).rows is None
    assert build(engine, spec("m.t", "table"), "select x * 10 as y from raw.n", at(1)).rows == 3
    source(engine, "n", x=[1, 2, 3, 4])
    assert rows(engine, "select x from m.v order by x") == [(2,), (3,), (4,)]  # a view reads live
    assert rows(engine, "select y from m.t order by y") == [(10,), (20,), (30,)]


def test_append_adds_the_query_rows_each_run(engine: Engine) -> None:
    model = spec("m.log", "incremental")
    source(engine, "e", id=[1, 2])
    assert build(engine, model, "select id from raw.e", at(1), incremental=False).rows == 2
    source(engine, "e", id=[3])
    assert build(engine, model, "select id from raw.e", at(2)).rows == 1
    assert rows(engine, "select id from m.log order by id") == [(1,), (2,), (3,)]
    # a new column is added to the table; earlier rows hold NULL
    result = build(engine, model, "select id, 'x' as tag from raw.e", at(3))
    assert result.events == ['m.log: new column "tag" VARCHAR']
    assert rows(engine, "select id, tag from m.log order by id, tag nulls first") == [
        (1, None),
        (2, None),
        (3, None),
        (3, "x"),
    ]


def test_a_type_change_is_widened_or_refused(engine: Engine) -> None:
    model = spec("m.log", "incremental")
    source(engine, "e", id=pa.array([1], pa.int32()))
    build(engine, model, "select id from raw.e", at(1), incremental=False)
    source(engine, "e", id=pa.array([2], pa.int64()))
    assert build(engine, model, "select id from raw.e", at(2)).events == [
        'm.log: column "id" widened INTEGER -> BIGINT'
    ]
    with pytest.raises(ProjectError, match=r'type drift in column "id": BIGINT -> VARCHAR') as err:
        build(engine, model, "select 'x' || id as id from raw.e", at(3))
    assert "--full-refresh" in str(err.value)
    assert rows(engine, "select id from m.log order by id") == [(1,), (2,)]


# --- merge ---------------------------------------------------------------------------------------


def test_merge_upserts_on_the_key_and_null_keys_do_not_duplicate(engine: Engine) -> None:
    model = spec("m.cust", "incremental", key=("id",))
    source(engine, "c", id=[1, None, None, 2], name=["a", "n1", "n2", "b"])
    assert build(engine, model, "select id, name from raw.c", at(1), incremental=False).rows == 3
    # the last row per key wins, and the NULL key is one key
    assert rows(engine, "select id, name from m.cust order by id nulls last") == [
        (1, "a"),
        (2, "b"),
        (None, "n2"),
    ]
    source(engine, "c", id=[None, 1, 3], name=["n3", "a2", "c"])
    build(engine, model, "select id, name from raw.c", at(2))
    build(engine, model, "select id, name from raw.c", at(3))  # the same input again changes nothing
    assert rows(engine, "select id, name from m.cust order by id nulls last") == [
        (1, "a2"),
        (2, "b"),
        (3, "c"),
        (None, "n3"),
    ]


def test_merge_honours_deletes_the_query_emits(engine: Engine) -> None:
    model = spec("m.cust", "incremental", key=("id",))
    sql = "select id, name, op as _gm_op from raw.c"
    source(engine, "c", id=[1, 2, 3], name=["a", "b", "c"], op=["insert", "insert", "delete"])
    build(engine, model, sql, at(1), incremental=False)
    source(engine, "c", id=[1, 2], name=["a", "b2"], op=["delete", "update"])
    build(engine, model, sql, at(2))
    assert rows(engine, "select * from m.cust") == [(2, "b2")]


def test_merge_on_a_composite_key_with_a_null_part(engine: Engine) -> None:
    model = spec("m.p", "incremental", key=("a", "b"))
    source(engine, "p", a=[1, 1], b=[None, 2], v=[10, 20])
    build(engine, model, "select * from raw.p", at(1), incremental=False)
    source(engine, "p", a=[1], b=[None], v=[11])
    build(engine, model, "select * from raw.p", at(2))
    assert rows(engine, "select a, b, v from m.p order by b nulls first") == [(1, None, 11), (1, 2, 20)]


# --- by time -------------------------------------------------------------------------------------

EVENTS = "select ts, id from raw.ev"


def by_day(**options: Any) -> ModelSpec:
    return spec("m.ev", "incremental", time="ts", interval="day", **options)


def recorded(engine: Engine) -> list[date]:
    return [start.date() for start, _ in read_intervals(engine, "m.ev")]


def test_by_time_loads_from_start_to_now_and_records_finished_intervals(engine: Engine) -> None:
    source(
        engine,
        "ev",
        ts=[at(31, 9, 12).replace(year=2023), at(1, 1), at(2, 5), at(3, 7), at(5)],
        id=[0, 1, 2, 3, 5],
    )
    result = build(engine, by_day(start="2024-01-01"), EVENTS, at(3, 12), incremental=False)
    # Dec 31 is before start, Jan 5 after now: neither is loaded
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,), (3,)]
    assert days(result) == [(date(2024, 1, d), date(2024, 1, d + 1)) for d in (1, 2, 3)]
    assert result.rows == 3
    # Jan 3 is not over yet: it is built but not recorded, so the next run builds it again
    assert recorded(engine) == [date(2024, 1, 1), date(2024, 1, 2)]


def test_by_time_rerun_is_idempotent_and_rebuilds_only_the_open_interval(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(3, 7)], id=[1, 2, 3])
    model = by_day(start="2024-01-01")
    build(engine, model, EVENTS, at(3, 12), incremental=False)
    result = build(engine, model, EVENTS, at(3, 18))
    assert days(result) == [(date(2024, 1, 3), date(2024, 1, 4))]
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,), (3,)]


def test_by_time_fills_a_gap_in_the_middle(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(3, 7), at(4, 1)], id=[1, 2, 3, 4])
    model = by_day(start="2024-01-01")
    build(engine, model, EVENTS, at(5), incremental=False)
    # Jan 2 is lost (say a run built it into a table that was later restored without it)
    engine.execute(
        exp.delete(engine.table(INTERVALS), where="interval_start = TIMESTAMPTZ '2024-01-02 00:00:00+00'")
    )
    engine.execute(exp.delete(engine.table(Relation("m", "ev")), where="id = 2"))
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(2, 6), at(3, 7), at(4, 1)], id=[1, 2, 22, 3, 4])
    result = build(engine, model, EVENTS, at(5, 1))
    assert days(result) == [(date(2024, 1, 2), date(2024, 1, 3)), (date(2024, 1, 5), date(2024, 1, 6))]
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,), (3,), (4,), (22,)]
    assert recorded(engine) == [date(2024, 1, d) for d in (1, 2, 3, 4)]


def test_by_time_lookback_picks_up_late_rows(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(3, 7)], id=[1, 2, 3])
    model = by_day(start="2024-01-01", lookback=2, late_rows="ignore")
    build(engine, model, EVENTS, at(4, 12), incremental=False)
    # late rows for Jan 1 (outside the lookback) and Jan 3 (inside it) arrive; Jan 2's row was corrected
    source(engine, "ev", ts=[at(1, 1), at(1, 2), at(2, 5), at(3, 7), at(3, 8)], id=[1, 11, 20, 3, 33])
    result = build(engine, model, EVENTS, at(4, 13))
    assert days(result) == [(date(2024, 1, d), date(2024, 1, d + 1)) for d in (2, 3, 4)]
    assert rows(engine, "select id from m.ev order by id") == [(1,), (3,), (20,), (33,)]
    again = build(engine, model, EVENTS, at(4, 14))
    assert again.rows == 3  # the same three intervals rewritten: same rows
    assert rows(engine, "select id from m.ev order by id") == [(1,), (3,), (20,), (33,)]


def test_by_time_reprocesses_closed_intervals_that_got_late_rows(engine: Engine) -> None:
    """Rows that arrive in a closed interval (outside the lookback) are not lost silently: the
    interval is found by its count and hash of rows, and rebuilt; the run says so."""
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(3, 7), at(5, 1)], id=[1, 2, 3, 5])
    model = by_day(start="2024-01-01")
    build(engine, model, EVENTS, at(6, 12), incremental=False)
    nothing = build(engine, model, EVENTS, at(6, 13))
    assert days(nothing) == [(date(2024, 1, 6), date(2024, 1, 7))] and nothing.events == []
    # two late rows on Jan 1, Jan 3's row corrected (same count), Jan 5's row deleted at the source
    source(engine, "ev", ts=[at(1, 1), at(1, 2), at(1, 3), at(2, 5), at(3, 7)], id=[1, 11, 12, 2, 30])
    result = build(engine, model, EVENTS, at(6, 14))
    assert days(result) == [(date(2024, 1, d), date(2024, 1, d + 1)) for d in (1, 3, 5, 6)]
    assert result.events == [
        "m.ev: late rows in 3 closed intervals (2024-01-01, 2024-01-03, 2024-01-05): +1 rows against the "
        "table; reprocessed (late_rows: reprocess)"
    ]
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,), (11,), (12,), (30,)]
    assert build(engine, model, EVENTS, at(6, 15)).events == []


def test_by_time_late_rows_warn_counts_them_and_loads_nothing(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(3, 7)], id=[1, 3])
    model = by_day(start="2024-01-01", late_rows="warn")
    build(engine, model, EVENTS, at(6, 12), incremental=False)
    source(engine, "ev", ts=[at(1, 1), at(2, 2), at(2, 3), at(3, 7)], id=[1, 21, 22, 3])
    result = build(engine, model, EVENTS, at(6, 13))
    assert result.events == [
        "m.ev: late rows in 1 closed interval (2024-01-02): +2 rows against the table; not loaded "
        "(late_rows: warn): restate them with --restate 2024-01-02:2024-01-03"
    ]
    assert rows(engine, "select id from m.ev order by id") == [(1,), (3,)]


def test_by_time_a_widened_column_is_not_late_rows(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5)], id=pa.array([1, 2], pa.int32()))
    build(engine, by_day(start="2024-01-01"), EVENTS, at(3, 1), incremental=False)
    source(engine, "ev", ts=[at(1, 1), at(2, 5)], id=pa.array([1, 2], pa.int64()))
    result = build(engine, by_day(start="2024-01-01"), EVENTS, at(3, 2))
    assert result.events == ['m.ev: column "id" widened INTEGER -> BIGINT']


def test_by_time_float_sums_in_another_order_are_not_late_rows(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, h) for h in range(24)] * 200, v=[0.1 * i for i in range(4800)])
    sql = "select date_trunc('day', ts) as ts, sum(v) as total from raw.ev group by 1"
    model = by_day(start="2024-01-01")
    build(engine, model, sql, at(3, 1), incremental=False)
    for hour in range(2, 6):
        assert build(engine, model, sql, at(3, hour)).events == []


def test_by_time_without_start_begins_at_the_earliest_row(engine: Engine) -> None:
    source(engine, "ev", ts=[at(3, 4), at(2, 23)], id=[3, 2])
    result = build(engine, by_day(), EVENTS, at(3, 12), incremental=False)
    assert days(result) == [(date(2024, 1, 2), date(2024, 1, 3)), (date(2024, 1, 3), date(2024, 1, 4))]
    assert rows(engine, "select id from m.ev order by id") == [(2,), (3,)]
    # the first recorded interval is the start from now on: an earlier late row is not loaded
    source(engine, "ev", ts=[at(1, 4), at(3, 4), at(2, 23)], id=[1, 3, 2])
    build(engine, by_day(), EVENTS, at(3, 13))
    assert rows(engine, "select id from m.ev order by id") == [(2,), (3,)]


def test_by_time_with_no_rows_and_no_start_builds_an_empty_table(engine: Engine) -> None:
    source(engine, "ev", ts=pa.array([], pa.timestamp("us", tz="UTC")), id=pa.array([], pa.int64()))
    result = build(engine, by_day(), EVENTS, at(3), incremental=False)
    assert (result.rows, result.intervals) == (0, [])
    assert rows(engine, "select count(*) from m.ev") == [(0,)]


def test_by_time_full_refresh_forgets_the_intervals(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5)], id=[1, 2])
    build(engine, by_day(start="2024-01-01"), EVENTS, at(3), incremental=False)
    assert recorded(engine) == [date(2024, 1, 1), date(2024, 1, 2)]
    build(engine, by_day(start="2024-01-02"), EVENTS, at(3), incremental=False)
    assert recorded(engine) == [date(2024, 1, 2)]
    assert rows(engine, "select id from m.ev") == [(2,)]


def test_by_time_naive_timestamps_hours_and_months(engine: Engine) -> None:
    naive = [datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 1, 59), datetime(2024, 1, 1, 2, 0)]
    source(engine, "ev", ts=naive, id=[1, 2, 3])
    hourly = spec("m.ev", "incremental", time="ts", interval="hour", start="2024-01-01T01:00")
    result = build(engine, hourly, EVENTS, datetime(2024, 1, 1, 1, 45, tzinfo=UTC), incremental=False)
    assert [(s.hour, e.hour) for s, e in result.intervals] == [(1, 2)]
    assert rows(engine, "select id from m.ev") == [(2,)]  # the 02:00 row is in the future
    source(engine, "mo", d=[date(2023, 12, 31), date(2024, 1, 15), date(2024, 2, 29)], id=[1, 2, 3])
    monthly = spec("m.mo", "incremental", time="d", interval="month", start="2024-01-01")
    result = build(engine, monthly, "select d, id from raw.mo", at(10, month=3), incremental=False)
    assert days(result) == [(date(2024, m, 1), date(2024, m + 1, 1)) for m in (1, 2, 3)]
    assert rows(engine, "select id from m.mo order by id") == [(2,), (3,)]


class Counting:
    """A real engine that also keeps the statements it executes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[exp.Expr] = []

    def execute(self, statement: exp.Expr) -> int | None:
        self.statements.append(statement)
        return self.engine.execute(statement)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_a_long_backfill_is_a_few_statements(engine: Engine) -> None:
    stamps = [
        datetime(2021, 1, 1, tzinfo=UTC) + (datetime(2021, 1, 2) - datetime(2021, 1, 1)) * i
        for i in range(1100)
    ]
    source(engine, "ev", ts=stamps, id=list(range(1100)))
    model = spec("m.ev", "incremental", time="ts", interval="hour", start="2021-01-01")
    result = build(engine, model, EVENTS, datetime(2024, 1, 4, 10, 30, tzinfo=UTC), incremental=False)
    assert len(result.intervals) == 26_363  # three years of hours, in one create and one insert
    assert result.rows == 1099  # the last day (2024-01-05) is after now
    assert len(read_intervals(engine, "m.ev")) == 26_362
    # later, two missing stretches: two delete+insert pairs plus the open hour
    engine.execute(
        exp.delete(
            engine.table(INTERVALS),
            where="interval_start >= TIMESTAMPTZ '2022-01-01 00:00:00+00' AND "
            "interval_start < TIMESTAMPTZ '2022-02-01 00:00:00+00' OR "
            "interval_start >= TIMESTAMPTZ '2023-03-01 00:00:00+00' AND "
            "interval_start < TIMESTAMPTZ '2023-03-02 00:00:00+00'",
        )
    )
    counting = Counting(engine)
    result = build(counting, model, EVENTS, datetime(2024, 1, 4, 10, 45, tzinfo=UTC))  # type: ignore[arg-type]
    assert len(result.intervals) == 31 * 24 + 24 + 1
    target = engine.table(Relation("m", "ev"))
    writes = [type(s).__name__ for s in counting.statements if s.find(exp.Table) == target]
    assert writes == ["Delete", "Insert"] * 3  # Jan 2022, Mar 1 2023, and the open hour
    assert rows(engine, "select count(*), count(distinct id) from m.ev") == [(1099, 1099)]


def test_by_time_rejects_a_time_column_that_is_not_a_time(engine: Engine) -> None:
    source(engine, "ev", ts=["2024-01-01"], id=[1])
    with pytest.raises(
        ConfigError, match=r'models/m/ev.sql: time: column "ts" is VARCHAR; it must be a DATE'
    ):
        build(engine, by_day(), EVENTS, at(3), incremental=False)
    with pytest.raises(ConfigError, match='time: "when" is not a column of the model'):
        build(engine, spec("m.ev", "incremental", time="when"), EVENTS, at(3), incremental=False)


# --- crash ---------------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_crash_inside_the_transaction_leaves_table_and_intervals_as_before(engine: Engine) -> None:
    source(engine, "ev", ts=[at(1, 1), at(2, 5)], id=[1, 2])
    model = by_day(start="2024-01-01")
    build(engine, model, EVENTS, at(3), incremental=False)
    source(engine, "ev", ts=[at(1, 1), at(2, 5), at(3, 1), at(4, 1)], id=[1, 2, 3, 4])
    query = sqlglot.parse_one(EVENTS, read="duckdb")
    assert isinstance(query, exp.Query)
    with pytest.raises(Crash), engine.transaction():
        materialize(
            engine,
            model,
            query,
            Relation("m", "ev"),
            incremental=True,
            run_id=2,
            run_time=at(5),
            physical=lambda asset: engine.table(Relation.of(asset)),
        )
        assert rows(engine, "select count(*) from m.ev") == [(4,)]
        raise Crash
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,)]
    assert recorded(engine) == [date(2024, 1, 1), date(2024, 1, 2)]
    # and the next run does exactly what the crashed one would have
    build(engine, model, EVENTS, at(5))
    assert rows(engine, "select id from m.ev order by id") == [(1,), (2,), (3,), (4,)]
    assert recorded(engine) == [date(2024, 1, d) for d in (1, 2, 3, 4)]


# --- snapshot ------------------------------------------------------------------------------------

HISTORY = "_gm_valid_from, _gm_valid_to, _gm_is_current"


def test_snapshot_by_check_closes_changes_and_disappearances_and_reopens(engine: Engine) -> None:
    model = spec("m.snap", "snapshot", key=("id",))
    sql = "select id, city from raw.c"
    source(engine, "c", id=[1, 2, 3], city=["Berlin", "Paris", "Rome"])
    build(engine, model, sql, at(1), incremental=False)
    source(engine, "c", id=[1, 2], city=["Berlin", "Lyon"])
    build(engine, model, sql, at(2))
    result = build(engine, model, sql, at(3))  # the same input again
    assert result.rows == 0
    source(engine, "c", id=[1, 2, 3], city=["Berlin", "Lyon", "Rome"])
    build(engine, model, sql, at(4))
    assert rows(engine, f"select id, city, {HISTORY} from m.snap order by id, _gm_valid_from") == [
        (1, "Berlin", at(1), None, True),
        (2, "Paris", at(1), at(2), False),
        (2, "Lyon", at(2), None, True),
        (3, "Rome", at(1), at(2), False),  # gone on day 2: closed
        (3, "Rome", at(4), None, True),  # back on day 4: a new version
    ]


def test_snapshot_by_time_takes_effect_when_the_row_says(engine: Engine) -> None:
    model = spec("m.snap", "snapshot", key=("id",), time="updated_at")
    sql = "select id, city, updated_at from raw.c"
    naive = datetime(2023, 6, 1, 8, 0)
    source(engine, "c", id=[1, 2], city=["Berlin", "Paris"], updated_at=[naive, naive])
    build(engine, model, sql, at(1), incremental=False)
    moved = datetime(2023, 12, 24, 17, 30)
    source(engine, "c", id=[1, 2, 2], city=["Berlin", "Nice", "Lyon"], updated_at=[naive, naive, moved])
    build(engine, model, sql, at(2))
    build(engine, model, sql, at(3))
    june, christmas = naive.replace(tzinfo=UTC), moved.replace(tzinfo=UTC)
    # the latest row per key by its time wins; the change takes effect at that time
    assert rows(engine, f"select id, city, {HISTORY} from m.snap order by id, _gm_valid_from") == [
        (1, "Berlin", june, None, True),
        (2, "Paris", june, christmas, False),
        (2, "Lyon", christmas, None, True),
    ]


def test_snapshot_ignores_a_change_not_later_than_the_current_version(engine: Engine) -> None:
    model = spec("m.snap", "snapshot", key=("id",), time="updated_at")
    sql = "select id, city, updated_at from raw.c"
    source(engine, "c", id=[1], city=["Berlin"], updated_at=[at(5)])
    build(engine, model, sql, at(6), incremental=False)
    source(engine, "c", id=[1], city=["Bonn"], updated_at=[at(4)])  # older than the stored version
    assert build(engine, model, sql, at(7)).rows == 0
    assert rows(engine, f"select city, {HISTORY} from m.snap") == [("Berlin", at(5), None, True)]


def test_snapshot_row_without_a_time_takes_effect_at_the_run(engine: Engine) -> None:
    model = spec("m.snap", "snapshot", key=("id",), time="updated_at")
    sql = "select id, city, updated_at from raw.c"
    source(engine, "c", id=[1], city=["Berlin"], updated_at=pa.array([None], pa.timestamp("us")))
    build(engine, model, sql, at(6), incremental=False)
    source(engine, "c", id=[1], city=["Bonn"], updated_at=pa.array([None], pa.timestamp("us")))
    build(engine, model, sql, at(7))
    assert rows(engine, f"select city, {HISTORY} from m.snap order by 2") == [
        ("Berlin", at(6), at(7), False),
        ("Bonn", at(7), None, True),
    ]


# --- dimension -----------------------------------------------------------------------------------

DIM = "select id, name, city from raw.c"


def dim(type2: tuple[str, ...] = ("city",), **options: Any) -> ModelSpec:
    return spec("m.dim_customer", "dimension", key=("id",), type2=type2, **options)


def test_dimension_first_build_numbers_members_in_key_order_with_an_unknown_member(engine: Engine) -> None:
    source(engine, "c", id=[20, 10, 30], name=["b", "a", "c"], city=["Paris", "Berlin", "Rome"])
    assert build(engine, dim(), DIM, at(1), incremental=False).rows == 4
    floor = datetime(1900, 1, 1, tzinfo=UTC)
    assert rows(engine, f"select customer_key, id, name, city, {HISTORY} from m.dim_customer order by 1") == [
        (-1, None, "Unknown", "Unknown", floor, None, True),
        (1, 10, "a", "Berlin", floor, None, True),
        (2, 20, "b", "Paris", floor, None, True),
        (3, 30, "c", "Rome", floor, None, True),
    ]


def test_dimension_type1_overwrites_type2_adds_a_version_keys_stay_stable(engine: Engine) -> None:
    source(engine, "c", id=[20, 10], name=["b", "a"], city=["Paris", "Berlin"])
    build(engine, dim(surrogate_key="sk"), DIM, at(1), incremental=False)
    # 10 moves (type 2) and is renamed (type 1); 20 is renamed only; 5 is new (sorts first, numbered last)
    source(engine, "c", id=[20, 10, 5], name=["B", "A", "e"], city=["Paris", "Munich", "Oslo"])
    build(engine, dim(surrogate_key="sk"), DIM, at(2))
    build(engine, dim(surrogate_key="sk"), DIM, at(3))  # unchanged input: unchanged table
    floor = datetime(1900, 1, 1, tzinfo=UTC)
    assert rows(engine, f"select sk, id, name, city, {HISTORY} from m.dim_customer order by sk") == [
        (-1, None, "Unknown", "Unknown", floor, None, True),
        (1, 10, "A", "Berlin", floor, at(2), False),  # renamed on every version of 10
        (2, 20, "B", "Paris", floor, None, True),
        (3, 5, "e", "Oslo", floor, None, True),
        (4, 10, "A", "Munich", at(2), None, True),
    ]


def test_a_dimension_without_type2_columns_is_type1_only(engine: Engine) -> None:
    source(engine, "c", id=[1, 2], name=["a", "b"], city=["Berlin", "Rome"])
    build(engine, dim(type2=()), DIM, at(1), incremental=False)
    source(engine, "c", id=[1, 2], name=["a", "b"], city=["Paris", "Rome"])
    assert build(engine, dim(type2=()), DIM, at(2)).rows == 1
    assert rows(engine, "select customer_key, id, city, _gm_is_current from m.dim_customer order by 1") == [
        (-1, None, "Unknown", True),
        (1, 1, "Paris", True),
        (2, 2, "Rome", True),
    ]


def test_a_new_column_fills_a_dimension_in_place_and_versions_a_snapshot(engine: Engine) -> None:
    source(engine, "c", id=[1], name=["a"], city=["Berlin"])
    build(engine, dim(), DIM, at(1), incremental=False)
    build(engine, spec("m.snap", "snapshot", key=("id",)), DIM, at(1), incremental=False)
    with_email = "select id, name, city, 'a@x' as email from raw.c"
    build(engine, dim(), with_email, at(2))
    build(engine, spec("m.snap", "snapshot", key=("id",)), with_email, at(2))
    assert rows(engine, "select customer_key, email, _gm_is_current from m.dim_customer order by 1") == [
        (-1, "Unknown", True),
        (1, "a@x", True),  # type 1: written in place, no new version
    ]
    assert rows(engine, "select email, _gm_valid_from, _gm_valid_to from m.snap order by 2") == [
        (None, at(1), at(2)),
        ("a@x", at(2), None),
    ]


def test_dimension_with_time_versions_at_the_change_time(engine: Engine) -> None:
    sql = "select id, city, changed_at from raw.c"
    model = dim(time="changed_at")
    source(engine, "c", id=[1], city=["Berlin"], changed_at=[at(1)])
    build(engine, model, sql, at(2), incremental=False)
    source(engine, "c", id=[1], city=["Munich"], changed_at=[at(5)])
    build(engine, model, sql, at(9))
    assert rows(
        engine, "select customer_key, city, _gm_valid_from, _gm_valid_to from m.dim_customer where id = 1"
    ) == [
        (1, "Berlin", datetime(1900, 1, 1, tzinfo=UTC), at(5)),
        (2, "Munich", at(5), None),
    ]


def test_dimension_rejects_what_it_cannot_build(engine: Engine) -> None:
    source(engine, "c", id=[1], name=["a"], city=["x"], customer_key=[7])
    with pytest.raises(ConfigError, match='the model already has a column "customer_key"'):
        build(engine, dim(), "select * from raw.c", at(1), incremental=False)
    with pytest.raises(ConfigError, match='type2: "town" is not a column of the model'):
        build(engine, dim(type2=("town",)), DIM, at(1), incremental=False)


# --- fact ----------------------------------------------------------------------------------------


def customers(engine: Engine) -> None:
    """Customer 1 lives in Berlin until day 3, then in Paris; customer 2 in Rome."""
    source(engine, "c", id=[1, 2], name=["a", "b"], city=["Berlin", "Rome"])
    build(engine, dim(), DIM, at(1), incremental=False)
    source(engine, "c", id=[1, 2], name=["a", "b"], city=["Paris", "Rome"])
    build(engine, dim(), DIM, at(3))


FACT = "select invoice_id, id, invoice_date, amount from raw.inv"


def fact(**options: Any) -> ModelSpec:
    lookup = Lookup("m.dim_customer", ("id",), "invoice_date")
    return spec("m.fct_invoice", "fact", lookups={"customer_key": lookup}, **options)


def test_fact_finds_the_version_valid_at_the_event_time(engine: Engine) -> None:
    customers(engine)
    source(
        engine,
        "inv",
        invoice_id=[100, 101, 102, 103],
        id=[1, 1, 2, None],
        invoice_date=[date(2023, 5, 1), date(2024, 1, 4), date(2024, 1, 2), date(2024, 1, 2)],
        amount=[5, 6, 7, 8],
    )
    build(engine, fact(), FACT, at(5), incremental=False)
    assert rows(
        engine,
        "select f.invoice_id, f.customer_key, d.city from m.fct_invoice f "
        "join m.dim_customer d using (customer_key) order by 1",
    ) == [
        (100, 1, "Berlin"),  # older than the dimension: its first version reaches back
        (101, 3, "Paris"),  # after the move
        (102, 2, "Rome"),
        (103, -1, "Unknown"),  # no customer: the unknown member
    ]
    current = spec("m.fct_now", "fact", lookups={"customer_key": Lookup("m.dim_customer", ("id",))})
    build(engine, current, FACT, at(5), incremental=False)
    assert rows(engine, "select invoice_id, customer_key from m.fct_now order by 1") == [
        (100, 3),
        (101, 3),
        (102, 2),
        (103, -1),
    ]


def test_a_late_arriving_member_is_fixed_on_the_next_run(engine: Engine) -> None:
    customers(engine)
    source(engine, "inv", invoice_id=[1, 2], id=[2, 9], invoice_date=[date(2024, 1, 2)] * 2, amount=[5, 6])
    model = fact(key=("invoice_id",))
    build(engine, model, FACT, at(5), incremental=False)
    assert rows(engine, "select invoice_id, customer_key from m.fct_invoice order by 1") == [(1, 2), (2, -1)]
    # customer 9 arrives; this run's invoices are new ones only, yet invoice 2 is fixed too
    source(engine, "c", id=[1, 2, 9], name=["a", "b", "n"], city=["Paris", "Rome", "Oslo"])
    build(engine, dim(), DIM, at(6))
    source(engine, "inv", invoice_id=[3], id=[9], invoice_date=[date(2024, 1, 6)], amount=[7])
    build(engine, model, FACT, at(6, 1))
    assert rows(engine, "select invoice_id, id, customer_key from m.fct_invoice order by 1") == [
        (1, 2, 2),
        (2, 9, 4),
        (3, 9, 4),
    ]


def test_a_fact_without_a_key_is_rebuilt_and_so_always_current(engine: Engine) -> None:
    customers(engine)
    source(engine, "inv", invoice_id=[1], id=[9], invoice_date=[date(2024, 1, 2)], amount=[5])
    build(engine, fact(), FACT, at(5), incremental=False)
    source(engine, "c", id=[1, 2, 9], name=["a", "b", "n"], city=["Paris", "Rome", "Oslo"])
    build(engine, dim(), DIM, at(6))
    build(engine, fact(), FACT, at(6))
    assert rows(engine, "select invoice_id, customer_key from m.fct_invoice") == [(1, 4)]


def test_a_fact_by_time_looks_up_and_fixes_late_members(engine: Engine) -> None:
    customers(engine)
    model = fact(time="invoice_date", start="2024-01-01")
    source(
        engine,
        "inv",
        invoice_id=[1, 2],
        id=[1, 9],
        invoice_date=[date(2024, 1, 1), date(2024, 1, 2)],
        amount=[5, 6],
    )
    result = build(engine, model, FACT, at(4), incremental=False)
    assert len(result.intervals) == 4
    assert result.events == ["m.fct_invoice: rows at the unknown member (-1) of 2: customer_key 1"]
    source(engine, "c", id=[1, 2, 9], name=["a", "b", "n"], city=["Paris", "Rome", "Oslo"])
    build(engine, dim(), DIM, at(5))
    again = build(engine, model, FACT, at(5, 1))
    assert rows(engine, "select invoice_id, customer_key from m.fct_invoice order by 1") == [(1, 1), (2, 4)]
    # the member that arrived late is the fix-up's business, not a late row; nothing is orphaned now
    assert again.events == []


def test_fact_lookup_errors_name_the_columns(engine: Engine) -> None:
    customers(engine)
    source(engine, "inv", invoice_id=[1], customer_id=[1], invoice_date=[date(2024, 1, 2)], amount=[5])
    sql = "select invoice_id, customer_id, invoice_date, amount from raw.inv"
    wrong = spec(
        "m.f", "fact", lookups={"customer_key": Lookup("m.dim_customer", ("customer_id",), "invoice_date")}
    )
    with pytest.raises(ConfigError, match=r'm\.dim_customer has no column "customer_id"') as err:
        build(engine, wrong, sql, at(5), incremental=False)
    assert "hint: m.dim_customer has: customer_key, id, name, city" in str(err.value)


def test_intervals_and_validity_are_utc_whatever_the_session_time_zone(engine: Engine) -> None:
    set_zone = sqlglot.parse_one("SET TimeZone = 'Asia/Kolkata'", read="duckdb")
    engine.execute(set_zone)
    source(engine, "ev", ts=[at(1, 23), at(2, 0)], id=[1, 2])  # 04:30 and 05:30 the next day in Kolkata
    result = build(engine, by_day(start="2024-01-01"), EVENTS, at(2, 12), incremental=False)
    assert days(result) == [(date(2024, 1, 1), date(2024, 1, 2)), (date(2024, 1, 2), date(2024, 1, 3))]
    assert read_intervals(engine, "m.ev") == [(at(1), at(2))]
    one_day = build(engine, by_day(start="2024-01-02"), EVENTS, at(2, 12), incremental=False)
    assert one_day.rows == 1
    customers(engine)
    source(
        engine,
        "inv",
        invoice_id=[1, 2],
        id=[1, 1],
        invoice_date=[date(2024, 1, 2), date(2024, 1, 3)],
        amount=[5, 6],
    )
    build(engine, fact(), FACT, at(5), incremental=False)
    assert rows(engine, "select invoice_id, customer_key from m.fct_invoice order by 1") == [(1, 1), (2, 3)]
