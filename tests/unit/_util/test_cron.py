"""Cron schedules fire at the right real instants across daylight-saving changes, and catch up sanely."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from gristmill._util.cron import GRACE, CatchUp, Cron, Due, due

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
POLICIES: tuple[CatchUp, ...] = ("all", "latest", "none")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def local_day(zone: str, day: date) -> tuple[datetime, datetime]:
    """(after, until] covering one local calendar day."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    tick = timedelta(microseconds=1)
    return (start - tick).astimezone(UTC), (end - tick).astimezone(UTC)


def fires_on(expression: str, zone: str, day: date) -> list[datetime]:
    return Cron(expression, zone).fires(*local_day(zone, day))


SPRING = [
    (BERLIN, date(2024, 3, 31)),
    (BERLIN, date(2025, 3, 30)),
    (NEW_YORK, date(2024, 3, 10)),
    (NEW_YORK, date(2025, 3, 9)),
]
FALL = [
    (BERLIN, date(2024, 10, 27)),
    (BERLIN, date(2025, 10, 26)),
    (NEW_YORK, date(2024, 11, 3)),
    (NEW_YORK, date(2025, 11, 2)),
]


# --- daylight-saving time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, date(2024, 3, 31), utc(2024, 3, 31, 1, 0)),  # 02:30 missing -> 03:00 CEST
        (BERLIN, date(2025, 3, 30), utc(2025, 3, 30, 1, 0)),
        (NEW_YORK, date(2024, 3, 10), utc(2024, 3, 10, 7, 0)),  # 02:30 missing -> 03:00 EDT
        (NEW_YORK, date(2025, 3, 9), utc(2025, 3, 9, 7, 0)),
        (BERLIN, date(2024, 10, 27), utc(2024, 10, 27, 0, 30)),  # 02:30 twice -> first (CEST)
        (BERLIN, date(2025, 10, 26), utc(2025, 10, 26, 0, 30)),
        (NEW_YORK, date(2024, 11, 3), utc(2024, 11, 3, 7, 30)),  # 02:30 EST, not ambiguous in New York
        (NEW_YORK, date(2025, 11, 2), utc(2025, 11, 2, 7, 30)),
    ],
)
def test_a_daily_job_in_the_changing_hour_fires_exactly_once_on_transition_days(
    zone: str, day: date, expected: datetime
) -> None:
    assert fires_on("30 2 * * *", zone, day) == [expected]


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, date(2024, 3, 31), utc(2024, 3, 31, 1, 0)),
        (BERLIN, date(2024, 10, 27), utc(2024, 10, 27, 2, 0)),
        (NEW_YORK, date(2025, 3, 9), utc(2025, 3, 9, 7, 0)),
        (NEW_YORK, date(2025, 11, 2), utc(2025, 11, 2, 8, 0)),
    ],
)
def test_a_daily_job_outside_the_changing_hour_is_unaffected(
    zone: str, day: date, expected: datetime
) -> None:
    assert fires_on("0 3 * * *", zone, day) == [expected]


@pytest.mark.parametrize(("zone", "day"), SPRING)
def test_hourly_fires_23_times_on_the_spring_day(zone: str, day: date) -> None:
    fires = fires_on("0 * * * *", zone, day)
    assert len(fires) == 23
    assert all(b - a == HOUR for a, b in pairwise(fires))


@pytest.mark.parametrize(("zone", "day"), FALL)
def test_hourly_fires_25_times_on_the_fall_day_one_hour_apart(zone: str, day: date) -> None:
    fires = fires_on("0 * * * *", zone, day)
    assert len(fires) == 25
    assert len(set(fires)) == 25
    assert all(b - a == HOUR for a, b in pairwise(fires))


@pytest.mark.parametrize(("zone", "day"), FALL)
def test_sub_hourly_jobs_run_through_both_copies_of_the_repeated_hour_in_order(zone: str, day: date) -> None:
    fires = fires_on("*/30 * * * *", zone, day)
    assert len(fires) == 50
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(fires))


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, date(2024, 3, 31), utc(2024, 3, 31, 1, 0)),
        (NEW_YORK, date(2025, 3, 9), utc(2025, 3, 9, 7, 0)),
    ],
)
def test_several_missing_times_collapse_into_one_fire_after_the_gap(
    zone: str, day: date, expected: datetime
) -> None:
    assert fires_on("*/15 2 * * *", zone, day) == [expected]


def test_a_fixed_hour_fires_only_in_the_first_copy_of_the_repeated_hour() -> None:
    assert fires_on("*/15 2 * * *", BERLIN, date(2024, 10, 27)) == [
        utc(2024, 10, 27, 0, 0),
        utc(2024, 10, 27, 0, 15),
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 0, 45),
    ]


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2024, 11, 3), utc(2024, 11, 3, 5, 30)), (date(2025, 11, 2), utc(2025, 11, 2, 5, 30))],
)
def test_new_york_1_30_on_fall_back_day_fires_once_at_the_edt_instant(day: date, expected: datetime) -> None:
    assert fires_on("30 1 * * *", NEW_YORK, day) == [expected]


def test_only_a_full_hour_field_counts_as_every_hour() -> None:
    # `*/1` and `0-23` mean every hour; `*/2` does not, so its 02:00 fires once.
    for expression in ("0 */1 * * *", "0 0-23 * * *"):
        assert len(fires_on(expression, BERLIN, date(2024, 10, 27))) == 25
    assert len(fires_on("0 */2 * * *", BERLIN, date(2024, 10, 27))) == 12


def test_next_fire_and_last_fire_inside_the_repeated_hour() -> None:
    every_quarter = Cron("*/15 * * * *", BERLIN)
    # 02:50 CEST: the next fire is 02:00 CET, an earlier wall time but a later instant.
    assert every_quarter.next_fire(utc(2024, 10, 27, 0, 50)) == utc(2024, 10, 27, 1, 0)
    assert every_quarter.next_fire(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 27, 1, 15)
    assert every_quarter.last_fire(utc(2024, 10, 27, 1, 20)) == utc(2024, 10, 27, 1, 15)
    assert every_quarter.last_fire(utc(2024, 10, 27, 1, 0)) == utc(2024, 10, 27, 1, 0)
    assert every_quarter.last_fire(utc(2024, 10, 27, 0, 20)) == utc(2024, 10, 27, 0, 15)
    fixed = Cron("15 2 * * *", BERLIN)
    assert fixed.last_fire(utc(2024, 10, 27, 1, 20)) == utc(2024, 10, 27, 0, 15)
    assert fixed.next_fire(utc(2024, 10, 27, 0, 15)) == utc(2024, 10, 28, 1, 15)
    # 02:20 CET: the last fire is 02:45 CEST, a later wall time but an earlier instant.
    assert Cron("45 2 * * *", BERLIN).last_fire(utc(2024, 10, 27, 1, 20)) == utc(2024, 10, 27, 0, 45)


def test_last_fire_across_the_gap() -> None:
    cron = Cron("30 2 * * *", BERLIN)
    assert cron.last_fire(utc(2024, 3, 31, 1, 0)) == utc(2024, 3, 31, 1, 0)
    assert cron.last_fire(utc(2024, 3, 31, 0, 59, 59)) == utc(2024, 3, 30, 1, 30)
    assert cron.next_fire(utc(2024, 3, 30, 1, 30)) == utc(2024, 3, 31, 1, 0)


def _transition_days(zone: str, year: int) -> list[datetime]:
    tz = ZoneInfo(zone)
    out = []
    t = utc(year, 1, 1)
    while t.year == year:
        if (t + HOUR).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            out.append(t + HOUR)
        t += HOUR
    return out


def _expected(expression: str, zone: str, after: datetime, until: datetime) -> list[datetime]:
    """Minute-by-minute reading of the rules, straight from zoneinfo (minute-level expressions)."""
    tz = ZoneInfo(zone)
    every_hour = expression.split()[1] == "*"
    walls = set()
    it = croniter(expression, (after - timedelta(days=2)).replace(tzinfo=None))
    while (wall := it.get_next(datetime)) < (until + timedelta(days=2)).replace(tzinfo=None):
        walls.add(wall)
    out = []
    instant = after.replace(second=0, microsecond=0) + MINUTE
    while instant <= until:
        local = instant.astimezone(tz)
        wall = local.replace(tzinfo=None)
        skipped_from = (instant - MINUTE).astimezone(tz).replace(tzinfo=None) + MINUTE
        in_gap = any(skipped_from + k * MINUTE in walls for k in range((wall - skipped_from) // MINUTE))
        if (wall in walls and (every_hour or local.fold == 0)) or in_gap:
            out.append(instant)
        instant += MINUTE
    return out


ORACLE_EXPRESSIONS = [
    "30 2 * * *",
    "0 3 * * *",
    "30 1 * * *",
    "0 0 * * *",
    "45 23 * * *",
    "0 * * * *",
    "*/15 * * * *",
    "*/15 2 * * *",
    "10 0-3 * * *",
    "0 */2 * * *",
    "5 2 * * 0",
]


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, "Australia/Lord_Howe", "America/Santiago"])
@pytest.mark.parametrize("year", [2024, 2025])
def test_fires_match_a_minute_by_minute_reading_of_the_rules(zone: str, year: int) -> None:
    # Lord Howe shifts by 30 minutes; Santiago changes at midnight.
    transitions = _transition_days(zone, year)
    assert len(transitions) == 2
    for transition in transitions:
        after, until = transition - 12 * HOUR, transition + 12 * HOUR
        for expression in ORACLE_EXPRESSIONS:
            cron = Cron(expression, zone)
            got = cron.fires(after, until)
            assert got == _expected(expression, zone, after, until), (expression, zone, transition)
            for earlier, later in pairwise(got):
                assert cron.next_fire(earlier) == later
                assert cron.last_fire(later) == later
                assert cron.last_fire(later - timedelta(microseconds=1)) == earlier


def test_santiago_midnight_job_runs_at_one_when_midnight_is_skipped() -> None:
    assert fires_on("0 0 * * *", "America/Santiago", date(2024, 9, 8)) == [utc(2024, 9, 8, 4, 0)]


# --- calendar shapes ----------------------------------------------------------------------------


def test_weekly_job_keeps_its_local_time_across_the_change() -> None:
    cron = Cron("0 9 * * 1", NEW_YORK)
    assert cron.fires(utc(2024, 3, 1), utc(2024, 3, 19)) == [
        utc(2024, 3, 4, 14, 0),  # EST
        utc(2024, 3, 11, 13, 0),  # EDT
        utc(2024, 3, 18, 13, 0),
    ]


def test_weekly_job_in_the_gap_fires_once_on_the_change_day() -> None:
    cron = Cron("30 2 * * SUN", BERLIN)
    assert cron.fires(utc(2024, 3, 20), utc(2024, 4, 10)) == [
        utc(2024, 3, 24, 1, 30),
        utc(2024, 3, 31, 1, 0),
        utc(2024, 4, 7, 0, 30),
    ]


def test_monthly_job_at_local_midnight() -> None:
    cron = Cron("0 0 1 * *", BERLIN)
    assert cron.fires(utc(2024, 2, 1), utc(2024, 5, 1)) == [
        utc(2024, 2, 29, 23, 0),
        utc(2024, 3, 31, 22, 0),
        utc(2024, 4, 30, 22, 0),
    ]


def test_aliases_are_accepted() -> None:
    assert Cron("@daily", BERLIN).next_fire(utc(2024, 6, 1, 12)) == utc(2024, 6, 1, 22, 0)
    assert Cron("@hourly").next_fire(utc(2024, 6, 1, 12, 5)) == utc(2024, 6, 1, 13, 0)


def test_six_fields_put_seconds_first() -> None:
    cron = Cron("*/10 * * * * *")
    assert len(cron.fires(utc(2024, 6, 1, 12, 0, 0), utc(2024, 6, 1, 12, 1, 0))) == 6
    assert Cron("0 30 2 * * *", BERLIN).fires(*local_day(BERLIN, date(2024, 3, 31))) == [
        utc(2024, 3, 31, 1, 0)
    ]
    assert len(fires_on("0 0 * * * *", BERLIN, date(2024, 10, 27))) == 25


def test_six_fields_collapse_the_gap_to_one_fire() -> None:
    cron = Cron("*/10 * * * * *", BERLIN)
    assert cron.fires(utc(2024, 3, 31, 0, 59, 40), utc(2024, 3, 31, 1, 0, 10)) == [
        utc(2024, 3, 31, 0, 59, 50),
        utc(2024, 3, 31, 1, 0, 0),
        utc(2024, 3, 31, 1, 0, 10),
    ]


@pytest.mark.parametrize(("year", "days"), [(2024, 366), (2025, 365)])
@pytest.mark.parametrize("expression", ["0 0 * * *", "30 2 * * *", "30 1 * * *"])
def test_a_daily_job_fires_once_per_day_over_a_whole_year(expression: str, year: int, days: int) -> None:
    tz = ZoneInfo(BERLIN)
    tick = timedelta(microseconds=1)
    after = datetime(year, 1, 1, tzinfo=tz) - tick
    until = datetime(year + 1, 1, 1, tzinfo=tz) - tick
    fires = Cron(expression, BERLIN).fires(after, until)
    assert len(fires) == days
    assert len({f.astimezone(tz).date() for f in fires}) == days


def test_results_are_utc_aware_and_inputs_may_be_in_any_zone() -> None:
    cron = Cron("0 12 * * *", BERLIN)
    fire = cron.next_fire(datetime(2024, 6, 1, 9, 0, tzinfo=ZoneInfo(NEW_YORK)))
    assert fire == utc(2024, 6, 2, 10, 0)
    assert fire.tzinfo is UTC


def test_fires_is_half_open_and_limit_keeps_the_oldest() -> None:
    cron = Cron("0 * * * *")
    assert cron.fires(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3)) == [utc(2024, 1, 1, h) for h in (1, 2, 3)]
    assert cron.fires(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3), limit=2) == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]
    assert cron.fires(utc(2024, 1, 1, 3), utc(2024, 1, 1, 3)) == []
    assert cron.fires(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3), limit=0) == []
    assert cron.next_fire(utc(2024, 1, 1, 1)) == utc(2024, 1, 1, 2)
    assert cron.next_fire(utc(2024, 1, 1, 1, 0, 0, 1)) == utc(2024, 1, 1, 2)


def test_leap_day_job() -> None:
    cron = Cron("0 0 29 2 *")
    assert cron.next_fire(utc(2025, 1, 1)) == utc(2028, 2, 29)
    assert cron.last_fire(utc(2025, 1, 1)) == utc(2024, 2, 29)


def test_crons_compare_by_expression_and_zone() -> None:
    assert Cron("0 * * * *", BERLIN) == Cron(" 0  *  * * * ", BERLIN)
    assert Cron("0 * * * *", BERLIN) != Cron("0 * * * *")
    assert len({Cron("@daily"), Cron("@daily")}) == 1
    assert repr(Cron("@daily", BERLIN)) == "Cron('@daily', 'Europe/Berlin')"


# --- catch-up -----------------------------------------------------------------------------------

EVERY_MINUTE = Cron("* * * * *")


def test_all_runs_every_missed_tick_oldest_first() -> None:
    got = due(EVERY_MINUTE, utc(2024, 1, 1, 10, 0), utc(2024, 1, 1, 10, 5, 30), "all")
    assert got == Due(run=tuple(utc(2024, 1, 1, 10, m) for m in range(1, 6)), skipped=())


def test_latest_runs_the_newest_and_lists_the_rest_as_skipped() -> None:
    got = due(EVERY_MINUTE, utc(2024, 1, 1, 10, 0), utc(2024, 1, 1, 10, 5, 30), "latest")
    assert got.run == (utc(2024, 1, 1, 10, 5),)
    assert got.skipped == tuple(utc(2024, 1, 1, 10, m) for m in range(1, 5))
    assert not got.truncated


def test_none_runs_only_a_current_tick() -> None:
    got = due(EVERY_MINUTE, utc(2024, 1, 1, 10, 0), utc(2024, 1, 1, 10, 5, 30), "none")
    assert got.run == (utc(2024, 1, 1, 10, 5),)
    assert got.skipped == tuple(utc(2024, 1, 1, 10, m) for m in range(1, 5))
    daily = Cron("0 9 * * *")
    stale = due(daily, utc(2024, 1, 1, 9), utc(2024, 1, 3, 9, 5), "none")
    assert stale == Due(run=(), skipped=(utc(2024, 1, 2, 9), utc(2024, 1, 3, 9)))
    just_in = due(daily, utc(2024, 1, 1, 9), utc(2024, 1, 3, 9, 0, 0) + GRACE, "none")
    assert just_in == Due(run=(utc(2024, 1, 3, 9),), skipped=(utc(2024, 1, 2, 9),))
    relaxed = due(daily, utc(2024, 1, 1, 9), utc(2024, 1, 3, 9, 5), "none", grace=timedelta(minutes=10))
    assert relaxed.run == (utc(2024, 1, 3, 9),)


@pytest.mark.parametrize("catch_up", POLICIES)
def test_nothing_is_due_before_the_next_tick_or_for_a_claimed_tick(catch_up: CatchUp) -> None:
    assert due(EVERY_MINUTE, utc(2024, 1, 1, 10, 0), utc(2024, 1, 1, 10, 0, 59), catch_up) == Due((), ())
    assert due(EVERY_MINUTE, utc(2024, 1, 1, 10, 1), utc(2024, 1, 1, 10, 1), catch_up) == Due((), ())
    assert due(EVERY_MINUTE, utc(2024, 1, 1, 10, 2), utc(2024, 1, 1, 10, 1), catch_up) == Due((), ())


def test_a_year_of_downtime_on_a_per_minute_cron_is_capped() -> None:
    last, now = utc(2023, 6, 1), utc(2024, 6, 1, 12, 0, 30)
    for policy in POLICIES[1:]:
        got = due(EVERY_MINUTE, last, now, policy)
        assert got.run == (utc(2024, 6, 1, 12, 0),)
        assert len(got.skipped) == 1000
        assert got.skipped[0] == utc(2023, 6, 1, 0, 1)
        assert got.truncated
    stale = due(Cron("0 * * * *"), last, now + 5 * MINUTE, "none", limit=5)
    assert stale.run == ()
    assert stale.skipped == tuple(utc(2023, 6, 1, h) for h in range(1, 6))
    assert stale.truncated


def test_all_drains_a_long_downtime_in_batches() -> None:
    last, now = utc(2023, 6, 1), utc(2024, 6, 1, 12, 0, 30)
    first = due(EVERY_MINUTE, last, now, "all", limit=100)
    assert first.run == tuple(last + k * MINUTE for k in range(1, 101))
    assert first.truncated
    second = due(EVERY_MINUTE, first.run[-1], now, "all", limit=100)
    assert second.run[0] == last + 101 * MINUTE
    tail = due(EVERY_MINUTE, now - 3 * MINUTE, now, "all", limit=100)
    assert len(tail.run) == 3
    assert not tail.truncated


def test_a_schedule_with_no_history_runs_only_a_current_tick() -> None:
    daily = Cron("0 9 * * *")
    for policy in POLICIES:
        assert due(daily, None, utc(2024, 1, 3, 9, 0, 0), policy) == Due(
            run=(utc(2024, 1, 3, 9),), skipped=()
        )
        assert due(daily, None, utc(2024, 1, 3, 9, 0, 30), policy) == Due(
            run=(utc(2024, 1, 3, 9),), skipped=()
        )
        assert due(daily, None, utc(2024, 1, 3, 9, 5), policy) == Due(run=(), skipped=())


def test_first_seen_stands_in_for_the_last_tick() -> None:
    got = due(EVERY_MINUTE, None, utc(2024, 1, 1, 10, 3, 10), "all", first_seen=utc(2024, 1, 1, 10, 0, 30))
    assert got.run == tuple(utc(2024, 1, 1, 10, m) for m in (1, 2, 3))
    latest = due(
        EVERY_MINUTE, None, utc(2024, 1, 1, 10, 3, 10), "latest", first_seen=utc(2024, 1, 1, 10, 0, 30)
    )
    assert latest == Due(
        run=(utc(2024, 1, 1, 10, 3),), skipped=(utc(2024, 1, 1, 10, 1), utc(2024, 1, 1, 10, 2))
    )


def test_catch_up_across_daylight_saving_changes() -> None:
    nightly = Cron("30 2 * * *", BERLIN)
    got = due(nightly, utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0, 5), "all")
    assert got.run == (utc(2024, 3, 31, 1, 0),)
    hourly = Cron("0 * * * *", BERLIN)
    got = due(hourly, utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 2, 0), "all")
    assert got.run == (utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 2, 0))
    latest = due(hourly, utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 1, 30), "latest")
    assert latest == Due(run=(utc(2024, 10, 27, 1, 0),), skipped=(utc(2024, 10, 27, 0, 0),))


def test_due_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match='catch_up must be "all", "latest" or "none"'):
        due(EVERY_MINUTE, None, utc(2024, 1, 1), "some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        due(EVERY_MINUTE, None, utc(2024, 1, 1), "all", limit=0)
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        due(EVERY_MINUTE, None, datetime(2024, 1, 1), "all")
    with pytest.raises(ValueError, match="last_tick must be a timezone-aware datetime"):
        due(EVERY_MINUTE, datetime(2024, 1, 1), utc(2024, 1, 2), "all")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", 'cron "61 * * * *": minute 61 is out of range (0-59)'),
        ("5-70 * * * *", 'cron "5-70 * * * *": minute 70 is out of range (0-59)'),
        ("* 24 * * *", "hour 24 is out of range (0-23)"),
        ("* * 0 * *", "day 0 is out of range (1-31)"),
        ("* * * 13 *", "month 13 is out of range (1-12)"),
        ("* * * * 8", "weekday 8 is out of range (0-7)"),
        ("60 * * * * *", "second 60 is out of range (0-59)"),
        ("* * * FOO *", 'month "FOO" is neither a number (1-12) nor a name (JAN-DEC)'),
        ("a * * * *", 'minute "a" is not a number (0-59)'),
        ("*/0 * * * *", 'minute step "0" must be a whole number of 1 or more'),
        ("* * * *", "expected 5 fields (minute hour day month weekday) or 6 with seconds first"),
        ("0 0 1 1 * 2030 x", "got 7 fields"),
        ("", 'cron "": expected 5 fields'),
        ("@reboot", 'cron "@reboot": unknown shortcut; use one of @yearly'),
        ("0 0 30 2 *", 'cron "0 0 30 2 *" never fires'),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Cron(expression)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Europe/Berln", 'unknown time zone "Europe/Berln" (did you mean Europe/Berlin?)'),
        ("europe/berlin", 'unknown time zone "europe/berlin" (did you mean Europe/Berlin?)'),
        ("America/NewYork", "did you mean America/New_York?"),
        ("Nowhere/Special", 'unknown time zone "Nowhere/Special" (use an IANA name such as "Europe/Berlin"'),
        ("", 'unknown time zone ""'),
        ("../etc/passwd", 'unknown time zone "../etc/passwd"'),
    ],
)
def test_unknown_zones_suggest_the_right_name(zone: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Cron("0 * * * *", zone)
    assert message in str(raised.value)


def test_naive_datetimes_are_refused() -> None:
    cron = Cron("0 * * * *")
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        cron.next_fire(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="at_or_before must be a timezone-aware datetime"):
        cron.last_fire(datetime(2024, 1, 1))
