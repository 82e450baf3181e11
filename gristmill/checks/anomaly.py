"""Judge a metric's newest value against its own history with a robust baseline.

The baseline is the median of earlier values and their spread the median absolute deviation
(scaled to a standard deviation), so one wild run cannot drag it. Two things are kept out of the
baseline: the value being judged (and anything measured with it), and every earlier value that
was itself flagged, so a past incident does not widen what counts as normal. With weekly
seasonality the baseline is the same weekday's values, so a quiet Sunday is compared with other
Sundays, not with Mondays.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Seasonality = Literal["auto", "weekly", "none"]
Direction = Literal["both", "drop", "rise"]

MAD_TO_SIGMA = 1.4826
"""MAD times this estimates the standard deviation of normally distributed values."""
RELATIVE_FLOOR = 0.02
"""The spread is never taken below 2% of the median: a metric that never moved would otherwise
flag the first change of a single row."""


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    flagged: bool = False


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    value: float
    median: float | None = None
    low: float | None = None
    high: float | None = None
    history: int = 0
    """How many earlier values formed the baseline."""
    weekly: bool = False
    learning: bool = False
    """Too little history to judge yet."""

    def describe(self, metric: str) -> str:
        shown = _number(self.value)
        if self.learning:
            return f"{metric} {shown}: learning the baseline ({self.history} earlier values so far)"
        assert self.median is not None and self.low is not None and self.high is not None
        basis = (
            f"median {_number(self.median)} over {self.history} {'same-weekday ' if self.weekly else ''}runs"
        )
        band = f"{_number(self.low)}..{_number(self.high)}"
        if not self.anomalous:
            return f"{metric} {shown} is within the expected {band} ({basis})"
        side = "below" if self.value < self.low else "above"
        return f"{metric} {shown} is {side} the expected {band} ({basis})"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"


def judge(
    value: float,
    at: datetime,
    history: Sequence[Point],
    *,
    sensitivity: float = 3.5,
    min_history: int = 7,
    seasonality: Seasonality = "auto",
    direction: Direction = "both",
    window: int = 60,
    floor: float = 0.0,
) -> Verdict:
    """Is ``value`` (measured ``at``) out of line with ``history`` (earlier points, any order)?

    The baseline is the latest ``window`` unflagged earlier points, or with weekly seasonality
    (``auto``: when at least ``min_history // 2 + 1`` same-weekday points exist, and at least 3)
    the latest of those on ``at``'s weekday. The spread is at least ``floor``: the smallest
    change worth a flag in the metric's own unit."""
    clean = sorted((p for p in history if not p.flagged and p.at < at), key=lambda p: p.at)[-window:]
    weekly = False
    baseline = clean
    if seasonality != "none":
        same_day = [p for p in clean if p.at.weekday() == at.weekday()]
        enough = max(3, min_history // 2 + 1)
        if seasonality == "weekly" or len(same_day) >= enough:
            weekly, baseline = True, same_day
    needed = max(3, min_history // 2 + 1) if weekly else min_history
    if len(baseline) < needed:
        return Verdict(False, value, history=len(baseline), weekly=weekly, learning=True)
    values = [p.value for p in baseline]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(median), floor, 1e-9)
    low, high = median - sensitivity * spread, median + sensitivity * spread
    outside = (value < low and direction != "rise") or (value > high and direction != "drop")
    return Verdict(outside, value, median, low, high, len(baseline), weekly)
