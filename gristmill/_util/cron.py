"""Cron schedules in an IANA time zone, with daylight-saving time resolved on purpose.

croniter computes the wall-clock times (naive, so its own DST handling never runs); each wall
time is then placed on the real time line with zoneinfo:

* a wall time inside a spring-forward gap fires once, at the first instant after the gap; several
  gap times collapse into that one fire;
* a wall time that occurs twice (fall-back) fires at both occurrences only when the hour field
  matches every hour (``*``, ``*/1``, ``0-23``), because those are two distinct real hours;
  otherwise it fires at the first occurrence only;
* results are aware UTC datetimes, strictly increasing, never two at the same instant.

``due`` turns "the scheduler was down" into which ticks to run now, without enumerating a long
downtime tick by tick.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = ["GRACE", "CatchUp", "Cron", "Due", "due"]

CatchUp = Literal["all", "latest", "none"]

GRACE = timedelta(seconds=60)
"""How late a tick may be noticed and still count as "current" (catch-up ``none``, new schedules)."""

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_NAMES = {
    "month": (
        "JAN-DEC",
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    ),
    "weekday": ("SUN-SAT", ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
}
_FORMAT = '5 fields "minute hour day month weekday" (e.g. "30 2 * * *"), or 6 with seconds first'
_HOUR = 1  # index of the hour in croniter's expanded fields, with or without seconds


class Cron:
    """A validated cron expression bound to a time zone."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = expression.strip()
        self.timezone = timezone
        self._tz = _zone(timezone)
        if self.expression.startswith("@") and self.expression.lower() not in _ALIASES:
            raise ValueError(
                f'cron "{self.expression}": unknown shortcut; use one of {", ".join(_ALIASES)} or {_FORMAT}'
            )
        fields = _ALIASES.get(self.expression.lower(), self.expression).split()
        if len(fields) not in (5, 6):
            got = "nothing" if not fields else f"{len(fields)} field{'s' if len(fields) > 1 else ''}"
            raise ValueError(
                f'cron "{self.expression}": expected 5 fields (minute hour day month weekday) '
                f"or 6 with seconds first (second minute hour day month weekday), got {got}"
            )
        self._text = " ".join(fields)
        self._seconds = len(fields) == 6
        try:
            probe = self._croniter(datetime(2000, 1, 1))
        except CroniterError as err:
            problem = _diagnose(fields) or f"not a valid cron expression ({err}); write {_FORMAT}"
            raise ValueError(f'cron "{self.expression}": {problem}') from None
        try:
            probe.get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(
                f'cron "{self.expression}" never fires: no calendar date matches its day and month fields'
            ) from None
        hours = probe.expanded[_HOUR]
        self._every_hour = hours == ["*"] or len(set(hours)) == 24

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, {self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cron):
            return NotImplemented
        return (self._text, self.timezone) == (other._text, other.timezone)

    def __hash__(self) -> int:
        return hash((self._text, self.timezone))

    def next_fire(self, after: datetime) -> datetime:
        """First fire strictly after ``after``."""
        return next(self._iter_after(_utc(after, "after")))

    def last_fire(self, at_or_before: datetime) -> datetime | None:
        """Latest fire at or before the instant; None if there is none in the 50 years before it."""
        at = _utc(at_or_before, "at_or_before")
        # A fire x <= at has wall time x + offset(x), so start above at + the largest nearby offset.
        top = max(_offsets(self._tz, at, -1))
        start = (at + top).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        best: datetime | None = None
        try:
            walls = self._croniter(start)
            while True:
                first, second = self._resolve(walls.get_prev(datetime))
                latest = second or first
                if latest <= at:
                    return latest if best is None else max(best, latest)
                if first <= at:
                    best = first if best is None else max(best, first)
        except (CroniterBadDateError, OverflowError):
            return best

    def fires(self, after: datetime, until: datetime, limit: int | None = None) -> list[datetime]:
        """Every fire in (after, until], oldest first; ``limit`` keeps the oldest ones."""
        end = _utc(until, "until")
        out: list[datetime] = []
        if limit is not None and limit <= 0:
            return out
        for fire in self._iter_after(_utc(after, "after")):
            if fire > end:
                break
            out.append(fire)
            if limit is not None and len(out) >= limit:
                break
        return out

    def _croniter(self, start: datetime) -> croniter:
        return croniter(self._text, start, second_at_beginning=self._seconds)

    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        """Fires after ``after`` in order: merges first occurrences with delayed second ones."""
        # A fire x > after has wall time x + offset(x), so start below after + the smallest offset.
        low = min(_offsets(self._tz, after, 1))
        walls = self._croniter((after + low).replace(tzinfo=None))
        # First occurrences never decrease as wall time advances, and neither do second
        # occurrences (fall-back repeats); hold the latter back until a first one passes them.
        pending: deque[datetime] = deque()
        last = after
        while True:
            first, second = self._resolve(walls.get_next(datetime))
            while pending and pending[0] < first:
                held = pending.popleft()
                if held > last:
                    last = held
                    yield held
            if first > last:
                last = first
                yield first
            if second is not None:
                pending.append(second)

    def _resolve(self, wall: datetime) -> tuple[datetime, datetime | None]:
        """The fire instant for a wall time, plus the repeat instant when the fall-back rule fires twice."""
        early = wall.replace(tzinfo=self._tz, fold=0).astimezone(UTC)
        late = wall.replace(tzinfo=self._tz, fold=1).astimezone(UTC)
        if early == late:
            return early, None
        if early.astimezone(self._tz).replace(tzinfo=None) != wall:
            return _gap_end(self._tz, min(early, late), max(early, late)), None
        return min(early, late), (max(early, late) if self._every_hour else None)


@dataclass(frozen=True)
class Due:
    """What to do with the ticks since the last claimed one.

    ``run`` and ``skipped`` are oldest first and hold at most ``limit`` ticks each; ``truncated``
    says the cap cut something: with ``all`` more ticks remain to run on the next call, with
    ``latest``/``none`` ``skipped`` lists only the oldest missed ticks.
    """

    run: tuple[datetime, ...]
    skipped: tuple[datetime, ...]
    truncated: bool = False


def due(
    cron: Cron,
    last_tick: datetime | None,
    now: datetime,
    catch_up: CatchUp,
    *,
    first_seen: datetime | None = None,
    limit: int = 1000,
    grace: timedelta = GRACE,
) -> Due:
    """Ticks in (last_tick, now] to run now, and the ones deliberately skipped.

    Without ``last_tick`` the schedule is missing ticks only since ``first_seen``; without either
    it has no history, so only a current tick (not older than ``grace``) runs and nothing counts
    as skipped. ``all`` runs up to ``limit`` ticks per call, so a long downtime drains in batches
    as the caller advances ``last_tick``. ``latest`` runs the newest tick whatever its age;
    ``none`` runs it only if it is current. Cost is bounded by ``limit``, not by the downtime.
    """
    if catch_up not in ("all", "latest", "none"):
        raise ValueError(f'catch_up must be "all", "latest" or "none", not {catch_up!r}')
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    now = _utc(now, "now")
    since = last_tick if last_tick is not None else first_seen
    if since is None:
        newest = cron.last_fire(now)
        return Due(run=(newest,) if newest is not None and now - newest <= grace else (), skipped=())
    since = _utc(since, "last_tick" if last_tick is not None else "first_seen")
    if since >= now:
        return Due(run=(), skipped=())
    if catch_up == "all":
        ticks = cron.fires(since, now, limit=limit + 1)
        return Due(run=tuple(ticks[:limit]), skipped=(), truncated=len(ticks) > limit)
    newest = cron.last_fire(now)
    if newest is None or newest <= since:
        return Due(run=(), skipped=())
    older = cron.fires(since, newest, limit=limit + 1)
    if older and older[-1] == newest:
        older.pop()
    if catch_up == "latest" or now - newest <= grace:
        return Due(run=(newest,), skipped=tuple(older[:limit]), truncated=len(older) > limit)
    missed = [*older, newest]
    return Due(run=(), skipped=tuple(missed[:limit]), truncated=len(missed) > limit)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _offsets(tz: tzinfo, instant: datetime, direction: int) -> list[timedelta]:
    """UTC offsets over the day on one side of ``instant``: enough, since DST shifts are under a day."""
    out = []
    for step in range(5):
        offset = (instant + direction * step * timedelta(hours=6)).astimezone(tz).utcoffset()
        out.append(offset or timedelta(0))
    return out


def _gap_end(tz: tzinfo, low: datetime, high: datetime) -> datetime:
    """The transition instant in (low, high]: the first real instant after a spring-forward gap."""
    before = low.astimezone(tz).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (low + timedelta(seconds=mid)).astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return low + timedelta(seconds=hi)


def _zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = {zone.lower(): zone for zone in zoneinfo.available_timezones()}
    close = difflib.get_close_matches(name.strip().lower(), known, n=1)
    hint = (
        f"did you mean {known[close[0]]}?" if close else 'use an IANA name such as "Europe/Berlin" or "UTC"'
    )
    raise ValueError(f'unknown time zone "{name}" ({hint})')


def _diagnose(fields: list[str]) -> str | None:
    """Name the first recognisably wrong part, for a message better than croniter's."""
    specs = (("second", 0, 59), *_FIELDS) if len(fields) == 6 else _FIELDS
    for text, (name, lo, hi) in zip(fields, specs, strict=True):
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f'{name} step "{step}" must be a whole number of 1 or more'
            if base in ("*", "?") or any(mark in base.upper() for mark in "LW#"):
                continue
            for part in base.split("-"):
                if part.isdigit():
                    if not lo <= int(part) <= hi:
                        return f"{name} {part} is out of range ({lo}-{hi})"
                elif name in _NAMES and part.lower() not in _NAMES[name][1]:
                    return f'{name} "{part}" is neither a number ({lo}-{hi}) nor a name ({_NAMES[name][0]})'
                elif name not in _NAMES:
                    return f'{name} "{part}" is not a number ({lo}-{hi})'
    return None
