"""Interval arithmetic for time-range incremental models, as pure functions (no I/O).

An interval is a half-open ``[start, end)`` pair of UTC datetimes aligned to an hour, a day or a
calendar month. The runtime uses these to decide which intervals to (re)build; the planner can use
the same functions to say "3 intervals missing" without running anything."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from gristmill.project.specs import Interval

Span = tuple[datetime, datetime]
"""A half-open ``[start, end)`` range of UTC datetimes."""

UNITS: tuple[Interval, ...] = ("hour", "day", "month")


def utc(moment: datetime | date) -> datetime:
    """A timezone-aware UTC datetime; a naive datetime is taken as UTC, a date as its midnight."""
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_moment(text: str) -> datetime:
    """An ISO date or timestamp (``2024-01-01``, ``2024-01-01T06:00``, ``…+02:00``), as UTC."""
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f'"{text}" is not an ISO date or timestamp, e.g. 2024-01-01') from None


def floor(moment: datetime | date, unit: Interval) -> datetime:
    """The start of the interval holding ``moment``."""
    at = utc(moment)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown interval {unit!r}: one of {', '.join(UNITS)}")


def shift(start: datetime, unit: Interval, count: int = 1) -> datetime:
    """The interval start ``count`` intervals after (or, negative, before) the aligned ``start``."""
    if unit == "hour":
        return start + timedelta(hours=count)
    if unit == "day":
        return start + timedelta(days=count)
    if unit == "month":
        months = start.year * 12 + start.month - 1 + count
        return start.replace(year=months // 12, month=months % 12 + 1)
    raise ValueError(f"unknown interval {unit!r}: one of {', '.join(UNITS)}")


def span(start: datetime | date, end: datetime | date, unit: Interval) -> list[Span]:
    """Every interval from the one holding ``start`` up to the one holding ``end``, inclusive."""
    first, last = floor(start, unit), floor(end, unit)
    out: list[Span] = []
    at = first
    while at <= last:
        following = shift(at, unit)
        out.append((at, following))
        at = following
    return out


def contiguous(intervals: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping or touching intervals merged into as few ranges as possible."""
    merged: list[Span] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def missing(expected: Sequence[Span], done: Iterable[Span]) -> list[Span]:
    """The expected intervals not in ``done`` (in order): gaps in the middle included."""
    have = set(done)
    return [interval for interval in expected if interval not in have]


def complete(intervals: Iterable[Span], now: datetime) -> list[Span]:
    """The intervals that are over at ``now`` (their end is not after it)."""
    moment = utc(now)
    return [interval for interval in intervals if interval[1] <= moment]


def pending(
    start: datetime | date,
    now: datetime,
    unit: Interval,
    done: Iterable[Span] = (),
    lookback: int = 0,
) -> list[Span]:
    """The intervals a run at ``now`` processes, in order.

    From the interval holding ``start`` to the one holding ``now``: every interval not in
    ``done``, the ``lookback`` intervals before the newest again (for late rows), and the newest
    itself, which is not over yet. Nothing before ``start`` is ever processed."""
    expected = span(start, now, unit)
    if not expected:
        return []
    again = set(expected[-1 - max(lookback, 0) :])
    todo = set(missing(expected, done)) | again
    return [interval for interval in expected if interval in todo]


def describe(intervals: Sequence[Span], unit: Interval) -> str:
    """A short human summary, e.g. ``3 days: 2024-01-01..2024-01-03, 2024-01-05``."""
    if not intervals:
        return f"no {unit}s"
    fmt = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}[unit]
    parts = []
    for start, end in contiguous(intervals):
        last = shift(end, unit, -1)
        first_text, last_text = start.strftime(fmt), last.strftime(fmt)
        parts.append(first_text if first_text == last_text else f"{first_text}..{last_text}")
    count = len(intervals)
    return f"{count} {unit}{'s' * (count != 1)}: {', '.join(parts)}"
