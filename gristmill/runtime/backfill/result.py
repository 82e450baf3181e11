"""What a backfill did: the builds of time-range models a window of intervals at a time, and
what became of each interval (the driver is ``runtime.backfill.driver``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gristmill.runtime.run.executor import RunResult
from gristmill.state.records import BackfillRecord, PartitionRecord


@dataclass
class BackfillResult:
    """A backfill: builds of time-range models a window of intervals at a time (see
    ``Workspace.backfill``), and what became of each interval."""

    record: BackfillRecord
    """Its selection, range, status and partition counts by status."""
    partitions: list[PartitionRecord] = field(default_factory=list)
    """Each asset's intervals in the range, with the run that built each and its error."""
    runs: list[RunResult] = field(default_factory=list)
    """The runs it started this time, in order."""

    @property
    def backfill_id(self) -> int:
        return self.record.backfill_id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.record.partitions)

    @property
    def ok(self) -> bool:
        return self.status == "success"
