"""Interval arithmetic: aligning, listing, merging and finding what a run has to build."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gristmill.plan.intervals import (
    complete,
    contiguous,
    describe,
    floor,
    missing,
    parse_moment,
    pending,
    shift,
    span,
    utc,
)


def at(day: int, hour: int = 0, month: int = 1, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_floor_aligns_to_the_interval_in_utc() -> None:
    moment = datetime(2024, 3, 17, 13, 45, 12, 999, tzinfo=UTC)
    assert floor(moment, "hour") == datetime(2024, 3, 17, 13, tzinfo=UTC)
    assert floor(moment, "day") == at(17, month=3)
    assert floor(moment, "month") == at(1, month=3)
    berlin = timezone(timedelta(hours=1))
    assert floor(datetime(2024, 3, 1, 0, 30, tzinfo=berlin), "month") == at(1, month=2)  # Feb 29, 23:30 UTC
    assert floor(datetime(2024, 3, 1, 0, 30), "day") == at(1, month=3)  # naive is UTC
    assert floor(date(2024, 3, 5), "month") == at(1, month=3)


def test_shift_moves_whole_intervals_across_month_and_year_ends() -> None:
    assert shift(at(1, month=12, year=2023), "month") == at(1)
    assert shift(at(1, month=1), "month", -1) == at(1, month=12, year=2023)
    assert shift(at(1, month=1), "month", 14) == at(1, month=3, year=2025)
    assert shift(at(28, month=2), "day", 1) == at(29, month=2)
    assert shift(at(31, 23, month=12, year=2023), "hour") == at(1)


def test_span_lists_every_interval_up_to_the_one_holding_the_end() -> None:
    assert span(at(30, 5, month=1), at(2, 1, month=2), "day") == [
        (at(30), at(31)),
        (at(31), at(1, month=2)),
        (at(1, month=2), at(2, month=2)),
        (at(2, month=2), at(3, month=2)),
    ]
    assert span(at(15, month=11, year=2023), at(1, month=2), "month") == [
        (at(1, month=11, year=2023), at(1, month=12, year=2023)),
        (at(1, month=12, year=2023), at(1)),
        (at(1), at(1, month=2)),
        (at(1, month=2), at(1, month=3)),
    ]
    assert span(at(3), at(2), "day") == []
    assert len(span(at(1, year=2021), at(1, year=2024), "hour")) == (365 * 3) * 24 + 1


def test_contiguous_merges_touching_and_overlapping_intervals() -> None:
    days = [(at(d), at(d + 1)) for d in (5, 1, 2, 3, 7)]
    assert contiguous(days) == [(at(1), at(4)), (at(5), at(6)), (at(7), at(8))]
    assert contiguous([(at(1), at(5)), (at(2), at(3))]) == [(at(1), at(5))]
    assert contiguous([]) == []


def test_missing_finds_gaps_in_the_middle() -> None:
    expected = span(at(1), at(5), "day")
    done = [(at(1), at(2)), (at(2), at(3)), (at(4), at(5))]
    assert missing(expected, done) == [(at(3), at(4)), (at(5), at(6))]


def test_complete_keeps_intervals_that_are_over() -> None:
    days = span(at(1), at(3), "day")
    assert complete(days, at(3, 12)) == [(at(1), at(2)), (at(2), at(3))]
    assert complete(days, at(4)) == days


def test_pending_is_the_missing_intervals_the_lookback_and_the_open_one() -> None:
    done = [(at(d), at(d + 1)) for d in (1, 2, 4, 5, 6, 7)]
    now = at(8, 9)
    assert pending(at(1), now, "day", done) == [(at(3), at(4)), (at(8), at(9))]
    assert pending(at(1), now, "day", done, lookback=2) == [(at(d), at(d + 1)) for d in (3, 6, 7, 8)]
    assert pending(at(1), now, "day", [], lookback=100) == span(at(1), now, "day")
    assert pending(at(10), now, "day", done) == []  # start is in the future


def test_pending_never_reaches_before_start() -> None:
    done = [(at(1), at(2))]
    assert pending(at(3, 17), at(4, 1), "day", done, lookback=5) == [(at(3), at(4)), (at(4), at(5))]


def test_parse_moment_reads_iso_dates_and_timestamps_as_utc() -> None:
    assert parse_moment("2024-01-01") == at(1)
    assert parse_moment("2024-01-01T06:00") == at(1, 6)
    assert parse_moment("2024-01-01 06:00:00+02:00") == at(1, 4)
    with pytest.raises(ValueError, match='"yesterday" is not an ISO date or timestamp'):
        parse_moment("yesterday")
    assert utc(date(2024, 1, 1)) == at(1)


def test_describe_summarises_for_a_plan() -> None:
    todo = [(at(d), at(d + 1)) for d in (1, 2, 3, 5)]
    assert describe(todo, "day") == "4 days: 2024-01-01..2024-01-03, 2024-01-05"
    assert describe([(at(1, 5), at(1, 6))], "hour") == "1 hour: 2024-01-01 05:00"
    assert describe([], "month") == "no months"
