"""When a stream's windows close: the watermark of its partitions and the threshold it gives.

A window is emitted once, final, when the watermark (the oldest of its partitions' newest event
times, less ``lateness``) passes its end. A partition quiet for ``idle_timeout`` stops holding
the watermark back, and when every partition is quiet the watermark moves with the clock, so
the last windows close on an idle stream too."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from gristmill.connectors.streams.feed import Position
from gristmill.project.specs import StreamWindow
from gristmill.state.lake.offsets import Progress

ORIGIN = datetime(2000, 1, 3)
"""Where ``time_bucket`` aligns windows by default; window ends are ORIGIN + k * step."""


def watermark(
    progress: Mapping[Position, Progress],
    owned: Collection[Position],
    arrived: Mapping[Position, float],
    behind: Mapping[Position, int],
    idle: float,
    last_arrival: float,
    now: float,
) -> datetime | None:
    """The oldest newest-event-time of the partitions that are not idle; all idle: the newest
    one moved on by the wall-clock time since the last message (``now``, ``last_arrival`` and
    ``arrived`` on the monotonic clock; ``behind``: messages waiting per partition)."""
    active: list[datetime] = []
    for position in owned:
        g = progress.get(position)
        # Quiet: nothing arrived for a while and nothing is waiting to be read (a partition
        # whose messages are just slow to come is not idle).
        quiet = now - arrived.get(position, now) >= idle and not behind.get(position)
        if g is None or g.max_time is None:
            if not quiet:
                return None  # a partition that has said nothing yet may still hold old rows
            continue
        if not quiet:
            active.append(g.max_time)
    if active:
        return min(active)
    seen = [g.max_time for p, g in progress.items() if p in owned and g.max_time is not None]
    if not seen:
        return None
    return max(seen) + timedelta(seconds=now - last_arrival)


def closes(threshold: datetime, marks: Iterable[datetime | None], window: StreamWindow) -> bool:
    """Whether windows end between what was emitted (each partition's ``closed_until``,
    ``marks``) and ``threshold``."""
    marks = list(marks)
    if not marks:
        return False
    oldest = min((m for m in marks if m is not None), default=None)
    if oldest is None:
        return True
    if threshold <= oldest:
        return False
    if window.kind == "session":
        return True
    step = (window.every or window.size).total_seconds()
    return (threshold - ORIGIN).total_seconds() // step > (oldest - ORIGIN).total_seconds() // step
