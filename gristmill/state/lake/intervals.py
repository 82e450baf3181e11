"""The intervals a time-range incremental model has built, kept in the lake beside its data.

One row per interval of a target table (``target``, ``interval_start``, ``interval_end``,
``run_id``), written in the transaction that writes the interval's rows: a crash leaves both as
they were, so the next run rebuilds exactly what is missing. Only intervals that were over when
they were built are recorded; the one still running is built again by the next run."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from gristmill.engines.base import Engine, Relation
from gristmill.plan.intervals import Span, contiguous, floor, shift, utc
from gristmill.project.specs import Interval
from gristmill.sql import dimensional, types

INTERVALS = Relation("_gristmill", "intervals")


def read_intervals(engine: Engine, target: str) -> list[Span]:
    """The recorded intervals of ``target`` (``schema.name``), in order, as UTC datetimes."""
    if not engine.exists(INTERVALS):
        return []
    rows = engine.query(dimensional.read_intervals(engine.table(INTERVALS), target)).to_pylist()
    return [(utc(row["interval_start"]), utc(row["interval_end"])) for row in rows]


def record_intervals(
    engine: Engine, target: str, intervals: Iterable[Span], unit: Interval, run_id: int
) -> None:
    """Record these intervals of ``target`` as built by ``run_id`` (replacing earlier records of
    the same intervals); one insert per contiguous range. Call inside the data's transaction."""
    ranges = contiguous(intervals)
    if not ranges:
        return
    engine.ensure_table(INTERVALS, types.columns(dimensional.INTERVAL_COLUMNS))
    table = engine.table(INTERVALS)
    for start, end in ranges:
        engine.execute(dimensional.forget_intervals(table, target, start, end))
        engine.execute(dimensional.record_intervals(table, target, start, shift(end, unit, -1), unit, run_id))


def forget_intervals(engine: Engine, target: str) -> None:
    """Drop every recorded interval of ``target`` (a full refresh rebuilds them)."""
    if engine.exists(INTERVALS):
        engine.execute(dimensional.forget_intervals(engine.table(INTERVALS), target))


def forget_range(engine: Engine, target: str, start: datetime, end: datetime, unit: Interval) -> None:
    """Forget the recorded intervals of ``target`` that overlap [start, end): the next build of the
    model processes them again (a restatement)."""
    if engine.exists(INTERVALS):
        engine.execute(dimensional.forget_intervals(engine.table(INTERVALS), target, floor(start, unit), end))
