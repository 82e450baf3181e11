"""Two-phase aggregation, proved by running it: each query runs once over all the rows, and once
as its partial select over disjoint slices of the rows, merged by its final select — the answers
must be the same rows with the same column types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from gristmill.sql.partial import split

W1, W2, W3 = datetime(2024, 5, 1, 10, 1), datetime(2024, 5, 1, 10, 2), datetime(2024, 5, 1, 11, 0)
SLICES = 3

EVENTS = [
    # slice, user_id, window_end, amount, flag, qty
    (0, 1, W1, 10.0, True, 1),
    (0, 1, W1, 20.0, False, 2),
    (1, 1, W1, None, True, 3),
    (2, 1, W1, 5.0, None, None),
    (1, 2, W1, 7.5, False, 4),
    (0, 3, W1, None, None, 1),  # user 3 in W1: every amount NULL, in two slices
    (2, 3, W1, None, False, 2),
    (1, 1, W2, 1.25, True, 5),
    (2, 1, W2, 3.0, True, 1),
    (0, 2, W2, 100.0, True, 2),
    (0, 2, W2, -4.0, False, None),
    (2, 2, W2, 2.5, None, 3),
    (0, 4, W2, 0.1, True, 1),  # user 4 is not in the dimension
    (1, 4, W2, 0.2, False, 1),
    (2, 4, W2, 0.3, True, 2),
    (1, 2, W3, 9.0, True, 7),
    (2, 2, W3, 1.0, True, 8),
    (1, 3, W3, 42.0, None, None),
]
USERS = [(1, "fr"), (2, "de"), (3, "fr"), (5, "nl")]  # user 5 never buys


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """All the events in ``main.ev``, slice k of them alone in ``s<k>.ev``; ``main.dim`` the users."""
    con = duckdb.connect()
    con.execute(
        "create table main.ev (part integer, user_id integer, window_end timestamp, amount double, "
        "flag boolean, qty integer)"
    )
    con.executemany("insert into main.ev values (?, ?, ?, ?, ?, ?)", EVENTS)
    con.execute("create table main.dim (user_id integer, country varchar)")
    con.executemany("insert into main.dim values (?, ?)", USERS)
    for k in range(SLICES):
        con.execute(f"create schema s{k}")
        con.execute(f"create table s{k}.ev as select * from main.ev where part = {k}")
    yield con
    con.close()


def parse(sql: str) -> exp.Select:
    parsed = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(parsed, exp.Select)
    return parsed


def normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in a fixed order, doubles rounded (the two phases add up in another order)."""
    rounded = [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]
    return sorted(rounded, key=repr)


Result = tuple[list[str], list[str], list[tuple[Any, ...]]]


def run(con: duckdb.DuckDBPyConnection, sql: str) -> Result:
    relation = con.sql(sql)
    return list(relation.columns), [str(t) for t in relation.types], normal(relation.fetchall())


def direct(con: duckdb.DuckDBPyConnection, sql: str) -> Result:
    con.execute("set search_path = 'main'")
    return run(con, sql)


def two_phase(con: duckdb.DuckDBPyConnection, sql: str) -> Result:
    """The partial select over each slice alone, appended to one state table, then the final
    select over that table, its columns named as the query's."""
    query = parse(sql)
    found = split(query)
    assert found is not None, f"does not split: {sql}"
    names = direct(con, sql)[0]
    partial = found.partial_select(query, []).sql(dialect="duckdb")
    for k in range(SLICES):
        con.execute(f"set search_path = 's{k},main'")
        into = "create table main.partials as" if k == 0 else "insert into main.partials"
        con.execute(f"{into} {partial}")
    con.execute("set search_path = 'main'")
    final = found.final_select(exp.to_table("partials"), names).sql(dialect="duckdb")
    try:
        return run(con, final)
    finally:
        con.execute("drop table main.partials")


def assert_same(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    expected = direct(con, sql)
    assert expected[2], f"the query finds nothing, so it proves nothing: {sql}"
    assert two_phase(con, sql) == expected
    return expected[2]


GROUPED = {
    "sum": "select user_id, window_end, sum(amount) as total, sum(qty) as items from ev group by all",
    "count_star": "select user_id, window_end, count(*) as events from ev group by all",
    "count_column_skips_nulls": (
        "select user_id, window_end, count(amount) as priced, count(flag) as flagged from ev group by all"
    ),
    "min_max": (
        "select user_id, window_end, min(amount) as lo, max(amount) as hi, min(qty) as least, "
        "max(flag) as any_flag from ev group by all"
    ),
    "avg": "select user_id, window_end, avg(amount) as mean, avg(qty) as mean_qty from ev group by all",
    "filter": (
        "select user_id, window_end, count(*) filter (where flag) as flagged, "
        "sum(amount) filter (where not flag) as unflagged, avg(amount) filter (where qty > 1) as big, "
        "min(amount) filter (where flag) as least_flagged from ev group by all"
    ),
    "expressions_over_aggregates": (
        "select user_id, window_end, max(amount) - min(amount) as spread, "
        "sum(amount) / count(*) as per_event, sum(qty) * 1.0 / nullif(count(qty), 0) as per_item, "
        "coalesce(sum(amount), 0) + user_id as shifted, sum(user_id) as user_sum from ev "
        "group by user_id, window_end"
    ),
    "having": (
        "select user_id, window_end, sum(amount) as total from ev group by all "
        "having count(*) > 1 and max(amount) > 2 and user_id <> 4"
    ),
    "group_by_positions": "select window_end, user_id % 2 as parity, sum(qty) as items from ev group by 1, 2",
    "group_by_expressions": (
        "select date_trunc('hour', window_end) as hour, user_id % 2 as parity, count(*) as events, "
        "avg(amount) as mean from ev group by date_trunc('hour', window_end), user_id % 2"
    ),
    "group_by_keys_not_selected": "select sum(amount) as total, count(*) as events from ev group by user_id",
    "where": (
        "select user_id, window_end, sum(amount) as total, count(*) as events from ev "
        "where flag is not null and amount > 1 group by all"
    ),
    "join_to_a_dimension": (
        "select d.country, e.window_end, sum(e.amount) as total, count(*) as events, avg(e.qty) as mean_qty "
        "from ev as e join dim as d on d.user_id = e.user_id group by all"
    ),
    "left_join_using": (
        "select country, window_end, count(*) as events, max(amount) as hi "
        "from ev left join dim using (user_id) group by all"
    ),
}


@pytest.mark.parametrize("sql", GROUPED.values(), ids=GROUPED.keys())
def test_the_partials_of_slices_merge_to_the_answer_over_all_rows(
    con: duckdb.DuckDBPyConnection, sql: str
) -> None:
    assert_same(con, sql)


def test_count_stays_bigint_and_avg_stays_double(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "select user_id, count(*) as events, count(amount) as priced, avg(amount) as mean, "
        "avg(qty) as mean_qty from ev group by all"
    )
    names, types, _ = two_phase(con, sql)
    assert names == ["user_id", "events", "priced", "mean", "mean_qty"]
    assert types == ["INTEGER", "BIGINT", "BIGINT", "DOUBLE", "DOUBLE"]
    assert direct(con, sql)[1] == types


def test_avg_of_only_nulls_is_null_and_avg_of_integers_is_not_truncated(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = assert_same(
        con,
        "select user_id, window_end, avg(amount) as mean, avg(qty) as mean_qty, count(amount) as priced, "
        "sum(amount) as total from ev group by all",
    )
    by_group = {(r[0], r[1]): r[2:] for r in rows}
    assert by_group[(3, W1)] == (None, 1.5, 0, None)  # no amount at all; qty 1 and 2
    assert by_group[(1, W1)] == (round(35.0 / 3, 9), 2.0, 3, 35.0)


def test_having_drops_groups_after_the_merge(con: duckdb.DuckDBPyConnection) -> None:
    # The having sees the merged counts: no slice holds more than two events of a group, but
    # three groups have more than two in all.
    rows = assert_same(
        con,
        "select user_id, window_end, count(*) as events from ev group by all having count(*) > 2",
    )
    assert rows == [(1, W1, 4), (2, W2, 3), (4, W2, 3)]


def test_the_partials_may_be_kept_per_partition(con: duckdb.DuckDBPyConnection) -> None:
    """``extra`` columns (the stream's partition, window end) split the partial rows further;
    the final merges across them."""
    sql = "select user_id, window_end, count(*) as events, avg(amount) as mean from ev group by all"
    query = parse(sql)
    found = split(query)
    assert found is not None
    partial = found.partial_select(query, [(exp.column("part"), "_gm_partition")])
    con.execute(f"create table partials as {partial.sql(dialect='duckdb')}")
    # One row per group and partition: a state as small as the answer, whatever the events.
    state_rows = con.sql("select count(*) from partials").fetchone()
    assert state_rows == (len({(p, u, w) for p, u, w, *_ in EVENTS}),)
    names, types, expected = direct(con, sql)
    final = found.final_select(exp.to_table("partials"), names).sql(dialect="duckdb")
    assert run(con, final) == (names, types, expected)


def test_the_final_select_names_its_columns_as_asked(con: duckdb.DuckDBPyConnection) -> None:
    sql = "select user_id, sum(amount) from ev group by all"
    query = parse(sql)
    found = split(query)
    assert found is not None
    final = found.final_select(exp.to_table("partials"), ["who", "How Much"])
    assert final.named_selects == ["who", "How Much"]
    con.execute(f"create table partials as {found.partial_select(query, []).sql(dialect='duckdb')}")
    assert run(con, final.sql(dialect="duckdb"))[0] == ["who", "How Much"]


NOT_SPLIT = {
    "count_distinct": "select user_id, count(distinct amount) as n from ev group by all",
    "sum_distinct": "select user_id, sum(distinct amount) as s from ev group by all",
    "window_function": "select user_id, sum(sum(amount)) over () as everyone from ev group by all",
    "rank": "select user_id, rank() over (order by sum(amount)) as place from ev group by all",
    "star": "select * from ev group by all",
    "table_star": "select ev.* from ev group by all",
    "grouping_sets": (
        "select user_id, window_end, count(*) as n from ev group by grouping sets ((user_id), (window_end))"
    ),
    "rollup": "select user_id, window_end, count(*) as n from ev group by rollup (user_id, window_end)",
    "cube": "select user_id, window_end, count(*) as n from ev group by cube (user_id, window_end)",
    "no_group_by": "select count(*) as n, sum(amount) as total from ev",
    "median": "select user_id, median(amount) as m from ev group by all",
    "list": "select user_id, list(amount) as amounts from ev group by all",
    "string_agg": "select user_id, string_agg(cast(amount as varchar), ',') as s from ev group by all",
    "quantile": "select user_id, quantile_cont(amount, 0.9) as p90 from ev group by all",
    "any_value": "select user_id, any_value(amount) as a from ev group by all",
    "arg_max": "select user_id, arg_max(amount, qty) as a from ev group by all",
    "column_not_grouped": "select user_id, amount, count(*) as n from ev group by user_id",
    "column_not_grouped_in_having": (
        "select user_id, count(*) as n from ev group by user_id having max(amount) > qty"
    ),
    "subquery_in_from": "select user_id, count(*) as n from (select * from ev where flag) as t group by all",
    "join_to_a_subquery": (
        "select country, count(*) as n from ev join (select * from dim) as d using (user_id) group by all"
    ),
    "scalar_subquery": "select user_id, (select count(*) from dim) as k, count(*) as n from ev group by all",
    "cte": (
        "with per_user as (select user_id, count(*) as n from ev group by all) "
        "select n, count(*) as users from per_user group by all"
    ),
    "distinct": "select distinct user_id, count(*) as n from ev group by all",
    "limit": "select user_id, count(*) as n from ev group by all limit 2",
    "offset": "select user_id, count(*) as n from ev group by all offset 1",
    "qualify": "select user_id, sum(amount) as s from ev group by all qualify row_number() over () = 1",
    "union": "select user_id, count(*) as n from ev group by all union all select 0, 0",
}


@pytest.mark.parametrize("sql", [pytest.param(sql, id=name) for name, sql in NOT_SPLIT.items()])
def test_queries_that_do_not_decompose_are_not_split(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    assert split(sqlglot.parse_one(sql, read="duckdb")) is None


def test_a_statement_that_is_not_a_select_is_not_split() -> None:
    assert split(sqlglot.parse_one("insert into t select user_id, count(*) from ev group by all")) is None
    assert split(sqlglot.parse_one("(select user_id, count(*) as n from ev group by all)")) is None


def test_an_unaliased_count_star_splits(con: duckdb.DuckDBPyConnection) -> None:
    assert_same(con, "select user_id, window_end, count(*) from ev group by all")


def test_an_aggregate_sqlglot_does_not_know_is_not_taken_for_a_plain_function(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # It could be an aggregate (it is): merging it as a plain function would count partial rows.
    sql = "select user_id, window_end, count_star() as n from ev group by user_id, window_end"
    assert split(parse(sql)) is None


def test_top_n_max_keeps_its_answer(con: duckdb.DuckDBPyConnection) -> None:
    # max(x, n) is a list of the n greatest: the greatest of the partial lists is not it.
    sql = "select user_id, window_end, max(amount, 2) as top from ev group by all"
    assert split(parse(sql)) is None


def test_a_constant_column_in_a_group_by_all_query(con: duckdb.DuckDBPyConnection) -> None:
    assert_same(con, "select 100 as tag, user_id, sum(amount) as total from ev group by all")
