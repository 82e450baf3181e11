"""Durations as users write them: ``45s``, ``30m``, ``2h``, ``1d``, ``5 minutes`` (or a number of
seconds)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")s?\s*$", re.I
)


def parse_duration(value: Any) -> timedelta | None:
    """The duration ``value`` spells, or None when it spells none (or zero)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, timedelta):
        return value if value > timedelta(0) else None
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value > 0 else None
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
