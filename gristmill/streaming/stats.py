"""The figures of a running stream, as ``gristmill streams`` and the metrics show them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class StreamStats:
    """What ``gristmill streams`` and the metrics show of a running stream."""

    model: str
    target: str
    started_at: float = field(default_factory=time.time)
    batches: int = 0
    events: int = 0
    rows_out: int = 0
    late: int = 0
    rejected: int = 0
    watermark: datetime | None = None
    """The stream's watermark: windows ending at or before it are complete and emitted (the
    oldest of its partitions' newest event times, less ``lateness``)."""
    newest_event: datetime | None = None
    """The newest event time seen in any of its partitions."""
    closed_until: datetime | None = None
    lag: dict[str, int] = field(default_factory=dict)
    last_commit: float | None = None
    compacted_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "target": self.target,
            "started_at": self.started_at,
            "batches": self.batches,
            "events": self.events,
            "rows_out": self.rows_out,
            "late": self.late,
            "rejected": self.rejected,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "newest_event": self.newest_event.isoformat() if self.newest_event else None,
            "closed_until": self.closed_until.isoformat() if self.closed_until else None,
            "lag": self.lag,
            "last_commit": self.last_commit,
            "compacted_at": self.compacted_at,
        }
