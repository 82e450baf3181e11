"""A windowed stream model kept as partial aggregates (``sql/partial.py``): batch by batch, one
partial row per group, partition and open window in a state table, merged when the window
closes. Tumbling and hopping windows whose aggregates decompose; sessions merge across
batches, so they keep rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from gristmill.engines.base import Column, Engine
from gristmill.errors import EngineError
from gristmill.project.specs import StreamWindow
from gristmill.sql import partial
from gristmill.sql.render import render
from gristmill.streaming import statements


@dataclass(frozen=True)
class TwoPhase:
    """The statements of a windowed model kept as partial aggregates."""

    accumulate: str
    """The batch's open-window rows, aggregated per group, partition and window, into the state
    (rendered once: the same statement runs for every batch)."""
    merge: exp.Query
    """The model's rows of the windows closing, from their partials."""
    forget: str
    """Delete the partials of the windows emitted (rendered once)."""


@dataclass(frozen=True)
class Windowing:
    """What the two-phase plan needs of the model's window."""

    window: StreamWindow
    time: str
    key: tuple[str, ...]


def plan(
    engine: Engine,
    query: exp.Query,
    is_stream: Callable[[exp.Table], bool],
    windowing: Windowing,
    names: list[str],
    partials: exp.Table,
    marks: exp.Table,
) -> tuple[TwoPhase, list[Column]] | None:
    """The statements keeping the model's windows as partial aggregates, and the state table's
    columns; None when the model's SQL (``query``, its stream read where ``is_stream`` says)
    does not decompose."""
    window, time, key = windowing.window, windowing.time, windowing.key
    if window.kind == "session":
        return None
    found = partial.split(query)
    if found is None or len(found.final) != len(names):
        return None
    alias = next(t for t in query.find_all(exp.Table) if is_stream(t)).alias_or_name

    def column(name: str) -> exp.Column:
        return exp.column(name, table=alias, quoted=True)

    extra = [
        (column("_gm_topic"), "_gm_topic"),
        (column("_gm_partition"), "_gm_partition"),
        (exp.cast(column("window_end"), exp.DataType.Type.TIMESTAMP), "_gm_end"),
    ]
    accumulate = statements.replace_stream(
        found.partial_select(query, extra),  # type: ignore[arg-type]
        is_stream,
        lambda t: statements.accumulate_rows(t, marks, time, window, key),
    )
    try:
        columns = engine.describe(accumulate.subquery("q"))
    except EngineError:
        return None  # e.g. an aggregate whose partials do not merge in this engine
    dialect = engine.dialect
    two_phase = TwoPhase(
        accumulate=render(exp.insert(accumulate, partials.copy()), dialect),
        merge=statements.merge(found, partials, marks, names),
        forget=render(statements.forget_partials(partials, marks), dialect),
    )
    return two_phase, columns
