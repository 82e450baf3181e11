"""Event-time windows as SQL: a relation gains ``window_start`` and ``window_end`` columns, one
row per window a row falls in. A stream model's SQL groups by them; the same SQL runs over a
micro-batch's state (streaming) and over the landed raw table (batch), so both give one answer.

- tumble S: the window of width S holding the row's time, aligned like ``time_bucket``;
- hop S every E: the S / E windows of width S, starting every E, that hold the row's time;
- session G per key: rows of one key less than G apart, ending G after the last row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import sqlglot
from sqlglot import exp

from gristmill.project.specs import StreamWindow

WINDOW_COLUMNS = ("window_start", "window_end")


def _micros(span: timedelta) -> int:
    return int(span.total_seconds() * 1_000_000) or 1


def _interval(span: timedelta) -> str:
    return f"to_microseconds({_micros(span)})"


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def windowed(source: str, time: str, window: StreamWindow, key: Sequence[str] = ()) -> str:
    """SQL of ``source`` (a relation's SQL) with the window columns added."""
    t = _q(time)
    if window.kind == "tumble":
        bucket = f"time_bucket({_interval(window.size)}, {t})"
        return (
            f"SELECT *, {bucket} AS window_start, {bucket} + {_interval(window.size)} AS window_end "
            f"FROM {source}"
        )
    if window.kind == "hop":
        assert window.every is not None
        steps = _micros(window.size) // _micros(window.every)
        every = _micros(window.every)
        start = f"time_bucket({_interval(window.every)}, {t}) - to_microseconds(_gm_hop * {every})"
        return (
            f"SELECT * EXCLUDE (_gm_hop), {start} AS window_start, "
            f"{start} + {_interval(window.size)} AS window_end "
            f"FROM {source}, range({steps}) AS _gm_hops(_gm_hop)"
        )
    keys = ", ".join(_q(k) for k in key)
    gap = _interval(window.size)
    ordered = f"PARTITION BY {keys} ORDER BY {t}"
    return (
        f"SELECT * EXCLUDE (_gm_new, _gm_session), min({t}) OVER _gm_s AS window_start, "
        f"max({t}) OVER _gm_s + {gap} AS window_end FROM ("
        f"SELECT *, sum(_gm_new) OVER ({ordered} ROWS UNBOUNDED PRECEDING) AS _gm_session FROM ("
        f"SELECT *, CASE WHEN {t} - lag({t}) OVER ({ordered}) < {gap} THEN 0 ELSE 1 END AS _gm_new "
        f"FROM {source})) WINDOW _gm_s AS (PARTITION BY {keys}, _gm_session)"
    )


def first_window_end(time: str, window: StreamWindow) -> str:
    """SQL of the end of the earliest window a row falls in (a session: its own time plus the
    gap, the earliest its session can end)."""
    t = _q(time)
    if window.kind == "tumble":
        return f"time_bucket({_interval(window.size)}, {t}) + {_interval(window.size)}"
    if window.kind == "hop":
        assert window.every is not None  # the earliest starts size - every before the latest
        return f"time_bucket({_interval(window.every)}, {t}) + {_interval(window.every)}"
    return t  # a session row is late once its own time is behind the closed mark


def last_window_end(time: str, window: StreamWindow) -> str:
    """SQL of the end of the latest window a row falls in (tumble and hop)."""
    t = _q(time)
    step = window.every or window.size
    return f"time_bucket({_interval(step)}, {t}) + {_interval(window.size)}"


def replace_table(
    query: exp.Query, matches: Callable[[exp.Table], bool], sql: Callable[[str], str]
) -> exp.Query:
    """``query`` with each table ``matches`` picks replaced by the subquery ``sql(table_sql)``,
    aliased as the table was, so the model's column references still resolve."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and matches(node):
            alias = node.alias or node.name
            bare = node.copy()
            bare.set("alias", None)
            inner = sqlglot.parse_one(sql(bare.sql(dialect="duckdb")), dialect="duckdb")
            return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return node

    result = query.transform(swap, copy=True)
    assert isinstance(result, exp.Query)
    return result
