"""What a unit test run reports: each test's outcome and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from gristmill.project.specs import ModelSpec
from gristmill.project.unittests import UnitTestSpec

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass

Status = Literal["passed", "failed", "error", "skipped"]
Row = tuple[Any, ...]

REL_TOLERANCE = 1e-9
"""Floats this close (relatively) are equal: 0.1 + 0.2 is 0.3 in a test."""

views = count()


@dataclass(frozen=True)
class UnitTestResult:
    name: str
    model: str
    status: Status
    location: str
    """``file:line`` of the test."""
    description: str | None = None
    message: str = ""
    """Why it failed, errored or was skipped."""
    rendering: Literal["full", "incremental"] = "full"
    columns: tuple[str, ...] = ()
    """The columns compared, as the test names them."""
    missing: tuple[Row, ...] = ()
    """Expected rows the model did not return (one entry per missing copy)."""
    unexpected: tuple[Row, ...] = ()
    """Rows the model returned that were not expected."""
    misordered: tuple[tuple[int, Row, Row], ...] = ()
    """``ordered: true``: (position, expected row, returned row) where the order differs."""
    expected_rows: int | None = None
    returned_rows: int | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class UnitTestRun:
    results: list[UnitTestResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status in ("passed", "skipped") for r in self.results)

    def summary(self) -> dict[str, int | float]:
        counts: dict[str, int | float] = {s: 0 for s in ("passed", "failed", "error", "skipped")}
        for result in self.results:
            counts[result.status] += 1
        counts["seconds"] = round(self.seconds, 3)
        return counts


@dataclass(frozen=True)
class Prepared:
    test: UnitTestSpec
    model: ModelSpec
    query: exp.Query
    rendering: Literal["full", "incremental"]
    warnings: tuple[str, ...]


# --- choosing tests -------------------------------------------------------------------------------
