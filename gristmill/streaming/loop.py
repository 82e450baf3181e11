"""The streaming loop: micro-batches from a broker through a stream model's SQL into the lake,
exactly once.

Each batch is one transaction (``writer``) holding everything it changes, the partitions' last
offsets included; a process killed anywhere resumes from the offsets in the lake (the broker's
own group offsets are written afterwards, for lag tools only). Windows close when the
watermark passes their end (``watermarks``)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import pyarrow as pa
from sqlglot import exp

from gristmill.connectors.streams.config import StreamTableOptions
from gristmill.connectors.streams.decode import Deserializer, decode
from gristmill.connectors.streams.feed import Delivery, Feed, GroupFeed, Position
from gristmill.engines.base import Engine, Maintenance, Relation, require_streaming
from gristmill.errors import EngineError, Unassigned
from gristmill.plan.graph import Asset
from gristmill.state.lake import offsets
from gristmill.state.lake.offsets import Progress
from gristmill.streaming import faults, watermarks
from gristmill.streaming.outbox import Outbox, Sink
from gristmill.streaming.settings import StreamSettings
from gristmill.streaming.stats import StreamStats
from gristmill.streaming.writer import Writer

_log = logging.getLogger(__name__)

_FULL_COLLECT = 60.0
"""Seconds between full garbage collections in the loop (the young generations go every turn)."""


class StreamLoop:
    """Runs one stream model: ``asset`` reading ``feed`` (its stream input's broker) into
    ``target``, joining the tables in ``physical`` (asset -> its table in the environment)."""

    def __init__(
        self,
        engine: Engine,
        asset: Asset,
        feed: Feed,
        options: StreamTableOptions,
        target: Relation,
        physical: Mapping[str, exp.Table],
        settings: StreamSettings,
        deserialize: Deserializer | None = None,
        on_commit: Callable[[StreamStats], None] | None = None,
        sink: Sink | None = None,
    ) -> None:
        assert asset.model is not None and asset.parsed is not None and asset.stream_input
        self.engine = require_streaming(engine, "a stream model")
        self.asset, self.model, self.feed = asset, asset.model, feed
        self.options, self.target, self.settings = options, target, settings
        self.deserialize, self.on_commit = deserialize, on_commit
        self.name = str(target)
        self.outbox_table = Relation(target.schema, f"{target.name}__outbox")
        self.outbox = Outbox(self.engine, self.outbox_table, sink) if sink is not None else None
        self.writer = Writer(self.engine, asset, target, physical, self.outbox)
        self.group = feed if isinstance(feed, GroupFeed) else None
        self._written = 0  # batches written since the last compaction
        self.stats = StreamStats(asset.name, self.name)
        self.progress: dict[Position, Progress] = {}
        self.arrived: dict[Position, float] = {}
        self.last_arrival = time.monotonic()
        self._lock = threading.Lock()  # guards progress between the feed's callbacks and the loop

    def prepare(self, env: str) -> None:
        """Create the model's table (and window state) empty if new, and point the environment's
        view at it, so readers see the table from the start."""
        self.writer.prepare(self.options, env)

    def publish(self) -> int:
        """Send what the outbox holds to the sink (nothing without one)."""
        return self.outbox.publish() if self.outbox is not None else 0

    # -- the loop ----------------------------------------------------------------------------------

    def resume(self, positions: list[Position]) -> dict[Position, int]:
        """The feed's assignment callback: where each new partition's committed results end."""
        found = offsets.read_progress(self.engine, self.name, positions)
        now = time.monotonic()
        with self._lock:
            for position in positions:
                self.progress[position] = found.get(position, Progress(-1))
                self.arrived[position] = now
        self.last_arrival = now  # idleness counts from when there is something to read
        return {p: g.offset for p, g in found.items() if g.offset >= 0}

    def run(self, stop: threading.Event) -> StreamStats:
        self.publish()  # what a crash left in the outbox goes first
        # A batch is hundreds of thousands of short-lived objects without cycles (messages, their
        # bytes and tuples): the collector, triggered by their count, would walk them and all that
        # start-up built again and again (a tenth of the CPU). So: start-up frozen out of its way,
        # no automatic runs inside the loop: the young generations are collected once per turn,
        # everything every ``_FULL_COLLECT`` seconds.
        collecting = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        collected = time.monotonic()
        self.feed.open(self.resume)
        try:
            self._turns(stop, collected)
        finally:
            gc.unfreeze()  # the loop may run inside a longer-lived process (a server, tests)
            if collecting:
                gc.enable()
            self.feed.close()
            if self.outbox is not None:
                self.outbox.close()
        return self.stats

    def _turns(self, stop: threading.Event, collected: float) -> None:
        """Poll, write and collect until ``stop`` is set or the stream has been idle long enough."""
        unassigned_since: float | None = collected  # owning no partition since (None: owns some)
        joined = False
        while not stop.is_set():
            delivery = self.feed.poll(self.settings.batch_size, self.settings.max_wait)
            self._drop_revoked(delivery)
            now = time.monotonic()
            if len(delivery):
                self.last_arrival = now
                for position in delivery.last_offsets():
                    self.arrived[position] = now
                self._commit(delivery)
            elif self.model.window is None or not self._commit(None):
                # (a windowed stream's clock may close windows on a quiet stream)
                self._heartbeat()
            if self.settings.compact_every and self._written >= self.settings.compact_every:
                self._compact()
            owns = bool(self.feed.assigned())
            group_joined = self.group.joined if self.group is not None else True
            if owns:
                unassigned_since = None
            elif unassigned_since is None or (group_joined and not joined):
                unassigned_since = now  # from when it lost its partitions, or joined with none
            joined = group_joined
            self._check_assigned(now, unassigned_since, joined)
            idle = self.settings.stop_when_idle
            if idle is not None and owns and not len(delivery) and now - self.last_arrival >= idle:
                break
            if now - collected < _FULL_COLLECT:
                gc.collect(1)
            else:
                gc.collect()
                collected = now

    def _check_assigned(self, now: float, unassigned_since: float | None, joined: bool) -> None:
        """Idle time counts only once there is something to read, so a process the group gives no
        partition would wait for ever: it stops once it has had none for the idle time after
        joining the group (or, when the group never answers, e.g. while it waits out a member
        that died, that plus the group's session timeout)."""
        idle = self.settings.stop_when_idle
        if idle is None or unassigned_since is None:
            return
        join_timeout = self.group.join_timeout if self.group is not None else 0
        limit = idle if joined else idle + join_timeout
        if now - unassigned_since >= limit:
            raise Unassigned(
                f"{self.asset.name}: no partition of {self.asset.stream_input} was assigned to "
                f"this process for {now - unassigned_since:.0f} s (--stop-when-idle {idle:g}"
                f"{'' if joined else ', the group never answered'}), so it stops",
                hint="the other members of the consumer group own every partition (more "
                "processes than partitions), or the group is still waiting out a member that "
                "died (session.timeout.ms); `gristmill streams` shows the processes",
            )

    def _drop_revoked(self, delivery: Delivery) -> None:
        revoked = self.feed.take_revoked()
        if not revoked:
            return
        with self._lock:
            for position in revoked:
                self.progress.pop(position, None)
                self.arrived.pop(position, None)
        if len(delivery):
            delivery.drop(revoked)

    # -- one batch ---------------------------------------------------------------------------------

    def _commit(self, delivery: Delivery | None) -> bool:
        """Process one batch (None: only the clock, on a quiet stream); whether it wrote."""
        rows, rejected = (
            decode(delivery, self.options, self.deserialize) if delivery is not None else (None, None)
        )
        expected: dict[Position, int] = {}
        # Positions without replayable offsets (MQTT) cannot be fenced.
        if delivery is not None and self.feed.exactly_once and rows is not None:
            expected = {p: self.progress[p].offset for p in delivery.last_offsets() if p in self.progress}
            # Messages at or before the committed offset were processed already (a replay).
            rows = self._after_committed(rows, delivery.first_offsets())
        faults.reached("decoded")
        positions = delivery.last_offsets() if delivery is not None else {}
        updated, out, late = self.writer.transaction(
            positions, rows, rejected, expected, self.progress, self._threshold
        )
        if updated is None:
            return False
        self._written += 1
        with self._lock:
            self.progress.update(updated)
        if out:
            self.publish()
        if delivery is not None and len(delivery):
            self.feed.processed({p: g.offset for p, g in updated.items() if p in delivery.last_offsets()})
            faults.reached("acknowledged")
        stats = self.stats
        stats.batches += 1 if delivery is not None and len(delivery) else 0
        stats.events += len(delivery) if delivery is not None else 0
        stats.rows_out += out
        stats.late += late
        stats.rejected += rejected.num_rows if rejected is not None else 0
        stats.last_commit = time.time()
        self._heartbeat()
        return True

    def _heartbeat(self) -> None:
        """Refresh the figures others see (``gristmill streams``, /metrics) after each turn of
        the loop, a quiet one too: their freshness tells a running process from a dead one."""
        stats = self.stats
        threshold = self._threshold(self.progress)
        stats.watermark = threshold
        newest = [g.max_time for p, g in self.progress.items() if g.max_time is not None]
        stats.newest_event = max(newest) if newest else None
        closed = [g.closed_until for g in self.progress.values() if g.closed_until is not None]
        stats.closed_until = min(closed) if closed else None
        stats.lag = {f"{t}[{p}]": n for (t, p), n in self.feed.lag().items()}
        if self.on_commit is not None:
            self.on_commit(stats)

    def _compact(self) -> None:
        """Merge the small files and offset versions the last batches left, between batches.
        Each table is its own transaction and changes no row, so a crash anywhere leaves the
        data as it was; a conflict with another writer (a process sharing the topic) only puts
        it off to the next round."""
        self._written = 0
        writer = self.writer
        tables = (
            self.target,
            writer.partials,
            writer.state,
            writer.late,
            self.outbox_table,
            offsets.OFFSETS,
            offsets.REJECTED,
        )
        engine = self.engine
        if not isinstance(engine, Maintenance):
            return  # an engine without compaction keeps the small writes as they are
        for table in tables:
            try:
                engine.compact(table)
            except EngineError as err:
                _log.info("%s: compacting %s put off: %s", self.asset.name, table, err)
            faults.reached("compacted")
        self.stats.compacted_at = time.time()

    def _after_committed(self, rows: pa.Table, first: Mapping[Position, int]) -> pa.Table:
        import pyarrow.compute as pc

        if not rows.num_rows:
            return rows
        keep = None
        for (topic, partition), g in self.progress.items():
            start = first.get((topic, partition))
            if start is None or g.offset < start:
                continue  # none of the batch's rows of this partition were committed before
            mine = pc.and_(pc.equal(rows["_gm_topic"], topic), pc.equal(rows["_gm_partition"], partition))
            stale = pc.and_(mine, pc.less_equal(rows["_gm_offset"], g.offset))
            keep = pc.invert(stale) if keep is None else pc.and_(keep, pc.invert(stale))
        return rows if keep is None else rows.filter(keep)

    # -- watermarks ------------------------------------------------------------------------------

    def _threshold(self, progress: Mapping[Position, Progress]) -> datetime | None:
        """Where windows close: the watermark less ``lateness``."""
        mark = watermarks.watermark(
            progress,
            self.feed.assigned() or set(progress),
            self.arrived,
            self.feed.lag(),
            self.model.idle_timeout.total_seconds(),
            self.last_arrival,
            time.monotonic(),
        )
        return None if mark is None else mark - self.model.lateness
