"""Event-time windows as SQL: a relation gains ``window_start`` and ``window_end`` columns, one
row per window a row falls in. A stream model's SQL groups by them; the same SQL runs over a
micro-batch's state (streaming) and over the landed raw table (batch), so both give one answer.

- tumble S: the window of width S holding the row's time, aligned as
  ``sql.functions.time_bucket`` aligns them;
- hop S every E: the S / E windows of width S, starting every E, that hold the row's time;
- session G per key: rows of one key less than G apart, ending G after the last row."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from gristmill.project.specs import StreamWindow
from gristmill.sql.functions import interval, micros, time_bucket

WINDOW_COLUMNS = ("window_start", "window_end")
_SOURCE = "_gm_src"


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _ordered(time: exp.Column, keys: list[exp.Column]) -> exp.Window:
    return exp.Window(partition_by=keys, order=exp.Order(expressions=[exp.Ordered(this=time.copy())]))


def _over(function: exp.Expr, spec: exp.Window, **frame: object) -> exp.Window:
    window = spec.copy()
    window.set("this", function)
    if frame:
        window.set("spec", exp.WindowSpec(**frame))
    return window


def _source(source: exp.Table | exp.Subquery) -> exp.Table | exp.Subquery:
    aliased = source.copy()
    aliased.set("alias", exp.TableAlias(this=exp.to_identifier(_SOURCE)))
    return aliased


def windowed(
    source: exp.Table | exp.Subquery,
    time: str,
    window: StreamWindow,
    key: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> exp.Select:
    """``source`` (a table or subquery) with the window columns added.

    A session window computes helper columns on the way; given the source's ``columns`` it
    selects those by name, else it drops the helpers with ``* EXCLUDE``, which not every engine
    has."""
    t = _column(time)
    if window.kind == "tumble":
        bucket = time_bucket(t, window.size)
        return exp.select(
            exp.Star(),
            exp.alias_(bucket, "window_start"),
            exp.alias_(exp.Add(this=bucket.copy(), expression=interval(window.size)), "window_end"),
        ).from_(source.copy())
    if window.kind == "hop":
        assert window.every is not None
        steps = micros(window.size) // micros(window.every)
        hop = exp.Mul(this=exp.column("_gm_hop"), expression=interval(window.every))
        start = exp.Sub(this=time_bucket(t, window.every), expression=hop)
        hops = exp.Table(
            this=exp.GenerateSeries(start=exp.Literal.number(0), end=exp.Literal.number(steps - 1)),
            alias=exp.TableAlias(this=exp.to_identifier("_gm_hops"), columns=[exp.to_identifier("_gm_hop")]),
        )
        return (
            exp.select(
                exp.column(exp.Star(), table=_SOURCE),
                exp.alias_(start, "window_start"),
                exp.alias_(exp.Add(this=start.copy(), expression=interval(window.size)), "window_end"),
            )
            .from_(_source(source))
            .join(hops, join_type="cross")
        )
    keys = [_column(k) for k in key]
    gap = interval(window.size)
    ordered = _ordered(t, keys)
    apart = exp.LT(
        this=exp.Sub(this=t.copy(), expression=_over(exp.Lag(this=t.copy()), ordered)), expression=gap
    )
    starts = exp.select(
        exp.Star(),
        exp.alias_(
            exp.Case(ifs=[exp.If(this=apart, true=exp.Literal.number(0))], default=exp.Literal.number(1)),
            "_gm_new",
        ),
    ).from_(source.copy())
    running = _over(
        exp.Sum(this=exp.column("_gm_new")), ordered, kind="ROWS", start="UNBOUNDED", start_side="PRECEDING"
    )
    sessions = exp.select(exp.Star(), exp.alias_(running, "_gm_session")).from_(starts.subquery("_gm_starts"))
    session = exp.Window(this=exp.to_identifier("_gm_s"), partition_by=[*keys, exp.column("_gm_session")])
    named = exp.Window(alias=exp.to_identifier("_gm_s"), over="OVER")
    kept: list[exp.Expr] = (
        [exp.Star(except_=[exp.column("_gm_new"), exp.column("_gm_session")])]
        if columns is None
        else [_column(name) for name in columns]
    )
    return (
        exp.select(
            *kept,
            exp.alias_(_over(exp.Min(this=t.copy()), named), "window_start"),
            exp.alias_(
                exp.Add(this=_over(exp.Max(this=t.copy()), named), expression=gap.copy()), "window_end"
            ),
        )
        .from_(sessions.subquery("_gm_sessions"))
        .window(session)
    )


def first_window_end(time: str, window: StreamWindow) -> exp.Expr:
    """The end of the earliest window a row falls in (a session: its own time plus the gap, the
    earliest its session can end)."""
    t = _column(time)
    if window.kind == "tumble":
        return exp.Add(this=time_bucket(t, window.size), expression=interval(window.size))
    if window.kind == "hop":
        assert window.every is not None  # the earliest starts size - every before the latest
        return exp.Add(this=time_bucket(t, window.every), expression=interval(window.every))
    return t  # a session row is late once its own time is behind the closed mark


def last_window_end(time: str, window: StreamWindow) -> exp.Expr:
    """The end of the latest window a row falls in (tumble and hop)."""
    step = window.every or window.size
    return exp.Add(this=time_bucket(_column(time), step), expression=interval(window.size))


def replace_table(
    query: exp.Query, matches: Callable[[exp.Table], bool], build: Callable[[exp.Table], exp.Query]
) -> exp.Query:
    """``query`` with each table ``matches`` picks replaced by the subquery ``build(table)`` (the
    table without its alias), aliased as the table was, so the model's column references still
    resolve."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and matches(node):
            alias = node.alias or node.name
            bare = node.copy()
            bare.set("alias", None)
            return exp.Subquery(
                this=build(bare), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
            )
        return node

    result = query.transform(swap, copy=True)
    assert isinstance(result, exp.Query)
    return result
