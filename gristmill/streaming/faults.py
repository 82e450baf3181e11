"""Named points of a batch's life where the exactly-once tests kill the process.

Production code only calls ``reached(phase)``, which does nothing; the tests
(``tests/support/crashing.py``) set ``hook`` to something that kills the process the N-th time a
phase is reached. The phases: ``decoded`` (before the batch's transaction), ``written`` (inside
it, after every write), ``committed`` (after the commit), ``acknowledged`` (after the broker
heard of it) and ``compacted`` (between the tables of a compaction round)."""

from __future__ import annotations

from collections.abc import Callable

PHASES = ("decoded", "written", "committed", "acknowledged", "compacted")


def _nothing(phase: str) -> None:
    """The hook outside the crash tests."""


hook: Callable[[str], None] = _nothing
"""Called with the phase at each point; replaced only by tests."""


def reached(phase: str) -> None:
    hook(phase)
