"""Conversion metrics (MetricFlow's ``type: conversion``) on a small project of visits and
purchases: the conversions and the rate equal a hand-written query, where each purchase counts
once, for the latest visit of the same user at or before it within the window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gristmill.workspace import Workspace

VISITS = """visit_id,user_id,channel,visited_at
1,1,ads,2024-01-01
2,1,ads,2024-01-03
3,2,mail,2024-01-02
4,3,ads,2024-01-05
5,4,mail,2024-02-01
6,5,ads,2024-02-10
7,2,mail,2024-02-11
"""
PURCHASES = """purchase_id,user_id,amount,bought_at,channel
10,1,5,2024-01-04,ads
11,2,7,2024-01-20,mail
12,3,9,2024-01-05,mail
13,4,3,2024-03-15,mail
14,5,4,2024-02-12,ads
15,5,2,2024-02-13,mail
16,9,8,2024-02-13,ads
"""
METRICS = """\
semantic_models:
  - name: visits
    model: ref('visits')
    defaults: {agg_time_dimension: visited_at}
    entities:
      - {name: visit, type: primary, expr: visit_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - {name: visited_at, type: time, type_params: {time_granularity: day}}
      - {name: channel, type: categorical}
    measures:
      - {name: visits, agg: count, expr: visit_id}
  - name: purchases
    model: ref('purchases')
    defaults: {agg_time_dimension: bought_at}
    entities:
      - {name: purchase, type: primary, expr: purchase_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - {name: bought_at, type: time, type_params: {time_granularity: day}}
      - {name: bought_on, type: categorical, expr: channel}
    measures:
      - {name: purchases, agg: count, expr: purchase_id}
metrics:
  - name: visit_to_buy
    type: conversion
    type_params:
      conversion_type_params:
        base_measure: visits
        conversion_measure: purchases
        entity: user
        window: 7 days
  - name: visit_buys
    type: conversion
    type_params:
      conversion_type_params:
        base_measure: visits
        conversion_measure: purchases
        entity: user
        window: 7 days
        calculation: conversions
  - name: same_channel_buys
    type: conversion
    type_params:
      conversion_type_params:
        base_measure: visits
        conversion_measure: purchases
        entity: user
        calculation: conversions
        constant_properties:
          - {base_property: channel, conversion_property: bought_on}
"""
FILES = {
    "sources/web.yml": "kind: files\ntables:\n  visits: {path: data/visits.csv}\n"
    "  purchases: {path: data/purchases.csv}\n",
    "data/visits.csv": VISITS,
    "data/purchases.csv": PURCHASES,
    "models/web/visits.sql": "-- kind: table\nselect visit_id, user_id, channel, cast(visited_at as date)"
    " as visited_at from raw.web__visits\n",
    "models/web/purchases.sql": "-- kind: table\nselect purchase_id, user_id, amount, channel,"
    " cast(bought_at as date)"
    " as bought_at from raw.web__purchases\n",
    "metrics/web.yml": METRICS,
}
PAIRED = """
with paired as (
  select v.*, p.purchase_id,
         row_number() over (partition by p.purchase_id order by v.visited_at desc) as rank
  from web.visits v join web.purchases p
    on v.user_id = p.user_id and p.bought_at >= v.visited_at and p.bought_at < v.visited_at + interval 7 day
), converted as (
  select date_trunc('month', visited_at)::date as m, channel, count(purchase_id) as n
  from paired where rank = 1 group by 1, 2
), based as (
  select date_trunc('month', visited_at)::date as m, channel, count(visit_id) as n
  from web.visits group by 1, 2
)
"""


@pytest.fixture
def built(make_project: Callable[..., Path]) -> Iterator[Workspace]:
    workspace = Workspace(make_project(FILES))
    assert workspace.run().ok
    yield workspace
    workspace.close()


def test_conversions_and_the_rate_equal_a_hand_written_query(built: Workspace) -> None:
    conversions = built.metric("visit_buys", grain="month", by=["channel"]).table
    expected = built.query(PAIRED + "select m, channel, n from converted order by 1, 2")
    assert conversions.to_pylist() == [
        {"metric_time": r["m"], "channel": r["channel"], "visit_buys": r["n"]} for r in expected.to_pylist()
    ]
    # user 1's purchase counts once (for the visit of the 3rd), user 5's two both (for the one
    # visit before them); user 2 bought 18 days after a visit, user 4 too late, user 9 never
    # visited
    assert sum(r["visit_buys"] for r in conversions.to_pylist()) == 4
    rate = built.metric("visit_to_buy", grain="month", by=["channel"]).table
    expected = built.query(
        PAIRED + "select b.m, b.channel, coalesce(c.n, 0)::double / b.n from based b"
        " left join converted c using (m, channel) order by 1, 2"
    )
    got = [tuple(r.values()) for r in rate.to_pylist()]
    want = [tuple(r.values()) for r in expected.to_pylist()]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert all((g[2] or 0) == pytest.approx(w[2]) for g, w in zip(got, want, strict=True))


def test_a_conversion_metric_without_keys_and_filtered(built: Workspace) -> None:
    total = built.metric("visit_buys").table.to_pylist()
    assert total == [{"visit_buys": 4}]
    ads = built.metric("visit_to_buy", where=["channel:eq:ads"]).table.to_pylist()
    assert ads == [{"visit_to_buy": pytest.approx(4 / 4)}]  # 4 ads visits, 4 purchases after them
    mail = built.metric("visit_to_buy", where=["channel:eq:mail"]).table.to_pylist()
    assert mail == [{"visit_to_buy": 0}]


def test_constant_properties_pair_only_events_that_share_them(built: Workspace) -> None:
    # without a window every purchase after a visit of its user would count (10 to 15); 12 and 15
    # came on another channel than any visit of their user before them
    answer = built.metric("same_channel_buys", by=["channel"]).table.to_pylist()
    assert answer == [{"channel": "ads", "same_channel_buys": 2}, {"channel": "mail", "same_channel_buys": 2}]


@pytest.mark.services
def test_conversions_on_postgres_answer_as_on_duckdb(built: Workspace, tmp_path: Path) -> None:
    from tests.conftest import write_files
    from tests.support.pg_engine import postgres_database

    def plain(table: object) -> list[tuple[object, ...]]:
        return [
            tuple(round(v, 9) if isinstance(v, float) else v for v in r.values()) for r in table.to_pylist()
        ]  # type: ignore[attr-defined]

    with postgres_database("gristmill_metrics_conversion") as url:
        root = tmp_path / "pg"
        root.mkdir()
        (root / "gristmill.toml").write_text(f'name = "t"\n[engine]\nkind = "postgres"\nurl = "{url}"\n')
        pg = Workspace(write_files(root, FILES))
        try:
            assert pg.run().ok
            for name in ("visit_buys", "visit_to_buy"):
                duck, theirs = (w.metric(name, grain="month", by=["channel"]) for w in (built, pg))
                assert "ROW_NUMBER() OVER" in theirs.sql
                assert plain(theirs.table) == plain(duck.table) and plain(duck.table)
        finally:
            pg.close()
