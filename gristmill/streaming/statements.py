"""The SQL a stream batch runs, as ASTs: pure builders over the batch's views and the model's
tables, rendered for the engine where they are run.

Each batch registers two views: the batch's rows (``batch``) and the marks (``marks``: each
owned partition's ``_gm_closed``, the end of the windows it emitted, and ``_gm_until``, the
threshold windows close at in this batch). A row is late when the earliest window it falls in
ended at or before its partition's ``_gm_closed``. The window columns themselves come from
``sql.windows``, so a stream and a batch build of the same model give one answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from gristmill.project.specs import StreamWindow
from gristmill.sql import functions, windows
from gristmill.sql.partial import Split

MARKS = "_gm_marks"
"""The alias the marks view takes in a statement."""

MARK_COLUMNS = ("_gm_t", "_gm_p", "_gm_closed", "_gm_until")


# -- the window builders (sql/windows.py) ---------------------------------------------------------


def window_end(time: str, window: StreamWindow, *, first: bool) -> exp.Expr:
    """The end of the earliest (``first``) or latest window a row falls in."""
    return (windows.first_window_end if first else windows.last_window_end)(time, window)


def windowed(
    source: exp.Table, time: str, window: StreamWindow, key: Sequence[str], columns: Sequence[str] | None
) -> exp.Select:
    """``source`` with the window columns; ``columns``, the source's own, spare a session window
    the ``* EXCLUDE`` not every engine has."""
    return windows.windowed(source, time, window, tuple(key), columns)


def replace_stream(
    query: exp.Query, matches: Callable[[exp.Table], bool], build: Callable[[exp.Table], exp.Query]
) -> exp.Query:
    """``query`` with each table ``matches`` picks replaced by ``build(table)``, aliased as it was."""
    return windows.replace_table(query, matches, build)


def aliased(table: exp.Table, alias: str) -> exp.Table:
    found = table.copy()
    found.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return found


def _timestamp(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, exp.DataType.Type.TIMESTAMP)


def _pair(alias: str, marks: str = MARKS) -> exp.Expr:
    """A row of ``alias`` and its partition's marks."""
    return exp.and_(
        exp.column("_gm_topic", table=alias).eq(exp.column("_gm_t", table=marks)),
        exp.column("_gm_partition", table=alias).eq(exp.column("_gm_p", table=marks)),
    )


def with_marks(select: exp.Select, alias: str, marks: exp.Table, name: str = MARKS) -> exp.Select:
    """``select`` with each row of ``alias`` joined to its partition's marks (as ``name``)."""
    return select.join(aliased(marks, name), on=_pair(alias, name))


def owned(marks: exp.Table, columns: Sequence[str] = ("_gm_topic", "_gm_partition")) -> exp.Expr:
    """Whether a row's partition is one this process owns (has marks for)."""
    return exp.In(
        this=exp.Tuple(expressions=[exp.column(c) for c in columns]),
        query=exp.select("_gm_t", "_gm_p").from_(marks.copy()).subquery(),
    )


def is_late(time: str, window: StreamWindow) -> exp.Expr:
    """Whether a row misses a window already emitted for its partition."""
    first = window_end(time, window, first=True)
    return exp.LTE(this=_timestamp(first), expression=exp.column("_gm_closed", table=MARKS))


def still_open(time: str, window: StreamWindow) -> exp.Expr:
    """Whether a row falls in a window its partition has not emitted yet."""
    if window.kind == "session":
        return exp.not_(is_late(time, window))
    last = window_end(time, window, first=False)
    return exp.GT(this=_timestamp(last), expression=exp.column("_gm_closed", table=MARKS))


def scan(batch: exp.Table, marks: exp.Table, time: str, window: StreamWindow) -> exp.Select:
    """Each partition's newest event time in the batch, and whether its oldest row is late (a
    window's end only grows with time: when the oldest row is not late, none is)."""
    column = exp.column(exp.to_identifier(time, quoted=True))
    # The oldest time takes the column's name: the lateness test reads it as it reads a row.
    summary = (
        exp.select(
            "_gm_topic",
            "_gm_partition",
            exp.alias_(_timestamp(exp.Max(this=column.copy())), "_gm_newest"),
            exp.alias_(exp.Min(this=column.copy()), exp.to_identifier(time, quoted=True)),
        )
        .from_(batch.copy())
        .group_by("_gm_topic", "_gm_partition")
    )
    late = exp.Coalesce(this=is_late(time, window), expressions=[exp.false()])
    select = exp.select(
        exp.alias_(exp.column("_gm_topic", table="b"), "t"),
        exp.alias_(exp.column("_gm_partition", table="b"), "p"),
        exp.alias_(exp.column("_gm_newest", table="b"), "newest"),
        exp.alias_(late, "late"),
    ).from_(summary.subquery("b"))
    return with_marks(select, "b", marks)


def late_rows(batch: exp.Table, marks: exp.Table, time: str, window: StreamWindow) -> exp.Select:
    """The batch's rows for windows their partition emitted already."""
    select = exp.select(exp.column(exp.Star(), table="b")).from_(aliased(batch, "b"))
    return with_marks(select, "b", marks).where(is_late(time, window))


def count_late(batch: exp.Table, marks: exp.Table, time: str, window: StreamWindow) -> exp.Select:
    select = exp.select(exp.alias_(exp.Count(this=exp.Star()), "late")).from_(aliased(batch, "b"))
    return with_marks(select, "b", marks).where(is_late(time, window))


def open_rows(batch: exp.Table, marks: exp.Table, time: str, window: StreamWindow) -> exp.Select:
    """The batch's rows a window still open needs (kept in the state until it closes)."""
    select = exp.select(exp.column(exp.Star(), table="b")).from_(aliased(batch, "b"))
    return with_marks(select, "b", marks).where(still_open(time, window))


def closing_rows(
    source: exp.Table,
    marks: exp.Table,
    until: exp.Expr,
    time: str,
    window: StreamWindow,
    key: Sequence[str],
    columns: Sequence[str] | None = None,
) -> exp.Select:
    """The windowed rows of ``source`` in windows that close now: not emitted for their
    partition yet, ending by ``until``."""
    end = _timestamp(exp.column("window_end", table="w"))
    emitted = (
        exp.select(exp.Literal.number(1))
        .from_(aliased(marks, MARKS))
        .where(
            exp.and_(_pair("w"), exp.GT(this=end.copy(), expression=exp.column("_gm_closed", table=MARKS)))
        )
    )
    rows = windowed(source, time, window, key, columns).subquery("w")
    return (
        exp.select(exp.Star())
        .from_(rows)
        .where(exp.and_(exp.LTE(this=end, expression=until.copy()), exp.Exists(this=emitted)))
    )


def forget_closed(
    state: exp.Table,
    marks: exp.Table,
    until: exp.Expr,
    time: str,
    window: StreamWindow,
    key: Sequence[str],
    columns: Sequence[str] | None = None,
) -> exp.Delete:
    """Delete the state rows no open window of this process's partitions needs (another
    process may own the rest and not have emitted them)."""
    if window.kind == "session":
        rows = ("_gm_topic", "_gm_partition", "_gm_offset")
        ended = (
            exp.select(*rows)
            .from_(windowed(state, time, window, key, columns).subquery("_gm_w"))
            .where(exp.LTE(this=_timestamp(exp.column("window_end")), expression=until.copy()))
        )
        done: exp.Expr = exp.In(
            this=exp.Tuple(expressions=[exp.column(c) for c in rows]), query=ended.subquery()
        )
    else:
        last = window_end(time, window, first=False)
        done = exp.LTE(this=_timestamp(last), expression=until.copy())
    return exp.delete(state.copy(), where=exp.and_(owned(marks), done))


# -- two-phase windows (sql/partial.py) ----------------------------------------------------------


def accumulate_rows(
    source: exp.Table, marks: exp.Table, time: str, window: StreamWindow, key: Sequence[str]
) -> exp.Select:
    """The windowed rows of the batch in windows their partition has not emitted."""
    rows = windowed(source, time, window, key, None).subquery("w")  # never a session
    select = exp.select(exp.column(exp.Star(), table="w")).from_(rows)
    closed = exp.GT(
        this=_timestamp(exp.column("window_end", table="w")), expression=exp.column("_gm_closed", table="m")
    )
    return with_marks(select, "w", marks, "m").where(closed)


def closing_partials(partials: exp.Table, marks: exp.Table) -> exp.Subquery:
    """The partial rows of the windows that close now."""
    select = exp.select(exp.column(exp.Star(), table="s")).from_(aliased(partials, "s"))
    end = exp.column("_gm_end", table="s")
    closing = exp.and_(
        exp.GT(this=end, expression=exp.column("_gm_closed", table="m")),
        exp.LTE(this=end.copy(), expression=exp.column("_gm_until", table="m")),
    )
    return with_marks(select, "s", marks, "m").where(closing).subquery("_gm_s")


def merge(split: Split, partials: exp.Table, marks: exp.Table, names: Sequence[str]) -> exp.Select:
    """The model's rows of the windows that close now, from their partials."""
    return split.final_select(closing_partials(partials, marks), names)


def forget_partials(partials: exp.Table, marks: exp.Table) -> exp.Delete:
    """Delete the partials of the windows emitted."""
    until = exp.select(exp.Max(this=exp.column("_gm_until"))).from_(marks.copy()).subquery()
    ended = exp.LTE(this=exp.column("_gm_end"), expression=until.copy())
    return exp.delete(partials.copy(), where=exp.and_(ended, owned(marks)))


# -- outbox and rejected messages ----------------------------------------------------------------


def insert_outbox(outbox: exp.Table, staged: exp.Table, batch: int) -> exp.Insert:
    """The staged rows, as JSON, into the outbox under the number ``batch``."""
    json = functions.row_json("s")
    select = exp.select(exp.Literal.number(batch), json).from_(aliased(staged, "s"))
    return exp.insert(select, outbox.copy())


def read_outbox(outbox: exp.Table) -> exp.Select:
    return exp.select("batch", "value").from_(outbox.copy()).order_by("batch")


def clear_outbox(outbox: exp.Table, last: int) -> exp.Delete:
    return exp.delete(
        outbox.copy(), where=exp.LTE(this=exp.column("batch"), expression=exp.Literal.number(last))
    )


def insert_rejected(rejected: exp.Table, view: exp.Table, target: str) -> exp.Insert:
    """The batch's undecodable messages, with their target and when."""
    select = exp.select(exp.Literal.string(target), exp.Star(), exp.CurrentTimestamp()).from_(view.copy())
    return exp.insert(select, rejected.copy())
