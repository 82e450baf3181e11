"""Comparing a result with the expected rows: as multisets, numbers within a tolerance, values
read in the type the result has."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from gristmill._util.suggest import did_you_mean
from gristmill.project.unittests import UnitTestSpec
from gristmill.runtime.unittests.data import text
from gristmill.runtime.unittests.results import REL_TOLERANCE, Row, UnitTestResult

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


def compare(
    test: UnitTestSpec,
    expected_columns: list[str],
    expected: list[Row],
    returned_columns: list[str],
    returned: list[Row],
    result: Any,
) -> UnitTestResult:
    counts = {"expected_rows": len(expected), "returned_rows": len(returned)}
    position: dict[str, int] = {}
    for index, column in enumerate(returned_columns):
        position.setdefault(column, index)
        position.setdefault(column.lower(), index)
    if not expected_columns and not expected:  # no rows expected: any row returned is shown whole
        expected_columns = returned_columns
    absent = [c for c in expected_columns if position.get(c, position.get(c.lower())) is None]
    if absent:
        hint = did_you_mean(absent[0], returned_columns)
        return result(
            "failed",
            f"the model returns no column {', '.join(repr(c) for c in absent)} "
            f"(it returns {', '.join(returned_columns)})" + (f"; {hint}" if hint else ""),
            columns=tuple(expected_columns),
            **counts,
        )
    picks = [position.get(c, position.get(c.lower(), 0)) for c in expected_columns]
    actual = [tuple(row[i] for i in picks) for row in returned]
    tolerance = test.expect.tolerance
    missing, unexpected = _multiset_diff(expected, actual, tolerance)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{_rows(len(missing))} expected but not returned")
        if unexpected:
            parts.append(f"{_rows(len(unexpected))} returned but not expected")
        return result(
            "failed",
            "; ".join(parts) + f" (expected {_rows(len(expected))}, the model returned {len(returned)})",
            columns=tuple(expected_columns),
            missing=tuple(missing),
            unexpected=tuple(unexpected),
            **counts,
        )
    if test.expect.ordered:
        misordered = tuple(
            (index, want, got)
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            if not _same_row(want, got, tolerance)
        )
        if misordered:
            return result(
                "failed",
                f"the rows match but in another order (first difference at row {misordered[0][0] + 1})",
                columns=tuple(expected_columns),
                misordered=misordered,
                **counts,
            )
    return result("passed", columns=tuple(expected_columns), **counts)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _multiset_diff(
    expected: list[Row], actual: list[Row], tolerance: float | None
) -> tuple[list[Row], list[Row]]:
    """Expected rows not returned and returned rows not expected, each copy counted."""
    left = set(range(len(actual)))
    by_value: dict[Row, list[int]] = {}
    for index, row in enumerate(actual):
        with contextlib.suppress(TypeError):  # a list or struct value: matched below
            by_value.setdefault(row, []).append(index)
    pending: list[Row] = []
    for row in expected:
        try:
            hits = by_value.get(row)
        except TypeError:
            hits = None
        if hits:
            left.discard(hits.pop(0))
        else:
            pending.append(row)
    missing: list[Row] = []
    for row in pending:
        match = next((i for i in sorted(left) if _same_row(row, actual[i], tolerance)), None)
        if match is None:
            missing.append(row)
        else:
            left.discard(match)
    return missing, [actual[i] for i in sorted(left)]


def _same_row(expected: Row, actual: Row, tolerance: float | None) -> bool:
    return all(_same(e, a, tolerance) for e, a in zip(expected, actual, strict=True))


def _same(expected: Any, actual: Any, tolerance: float | None) -> bool:
    """Equal as a reader of the test means it: 10.5 is DECIMAL 10.50, "2024-01-31" is that DATE."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        want = _as_bool(expected)
        return want is not None and want == _as_bool(actual)
    if isinstance(actual, int | float | Decimal):
        number = _as_number(expected)
        return number is not None and _same_number(number, actual, tolerance)
    if isinstance(actual, datetime):
        instant = _as_datetime(expected)
        return instant is not None and _utc(instant) == _utc(actual)
    if isinstance(actual, date):
        day = _as_date(expected)
        return day is not None and day == actual
    if isinstance(actual, clock):
        return _as_time(expected) == actual
    if isinstance(actual, list | tuple):
        return (
            isinstance(expected, list | tuple)
            and len(expected) == len(actual)
            and all(_same(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(actual, dict):
        return (
            isinstance(expected, dict)
            and {str(k) for k in expected} == {str(k) for k in actual}
            and all(_same(expected.get(k, expected.get(str(k))), v, tolerance) for k, v in actual.items())
        )
    if isinstance(actual, str):
        return (expected if isinstance(expected, str) else text(expected)) == actual
    return bool(expected == actual) or str(expected) == str(actual)


def _same_number(
    expected: int | float | Decimal, actual: int | float | Decimal, tolerance: float | None
) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        want, got = float(expected), float(actual)
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return math.isclose(want, got, rel_tol=REL_TOLERANCE, abs_tol=tolerance or 0.0)
    if tolerance:
        return abs(Decimal(expected) - Decimal(actual)) <= Decimal(str(tolerance))
    return Decimal(expected) == Decimal(actual)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "t", "f"):
        return value.strip().lower() in ("true", "t")
    return None


def _as_number(value: Any) -> int | float | Decimal | None:
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, clock())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date() if value.time() == clock() and value.tzinfo is None else None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_time(value: Any) -> clock | None:
    if isinstance(value, clock):
        return value
    if isinstance(value, int) and 0 <= value < 86_400:  # YAML reads an unquoted 12:30:00 as seconds
        return (datetime.min + timedelta(seconds=value)).time()
    if isinstance(value, str):
        try:
            return clock.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _utc(value: datetime) -> datetime:
    """Naive times in a test are UTC, the session time zone of every test."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
