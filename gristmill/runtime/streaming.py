"""The streaming loop: micro-batches from a broker through a stream model's SQL into the lake,
exactly once.

Each batch is one transaction holding everything it changes: the model's new rows, the window
state, late and rejected messages, and each partition's last offset and watermark. A process
killed anywhere leaves the lake as the last commit left it; the next one resumes from the offsets
in the lake (the broker's own group offsets are written afterwards, for lag tools only).

A windowed model whose aggregates decompose (sum, count, min, max, avg: ``sql/partial.py``) keeps,
batch by batch, one partial row per group, partition and open window in a state table, and
merges them when the window closes; any other windowed model keeps the rows of its open windows
and runs its SQL over them then, exactly as it runs over the landed table in batch mode. A window
is emitted once, final, when the watermark (the oldest of its partitions' newest event times,
less ``lateness``) passes its end. Rows for windows already emitted go to a ``__late`` table.
A partition quiet for ``idle_timeout`` stops holding the watermark back, and when every
partition is quiet the watermark moves with the clock, so the last windows close on an idle
stream too."""

from __future__ import annotations

import gc
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pyarrow as pa
import sqlglot
from sqlglot import exp

from gristmill.connectors.streams.config import REJECTED as REJECTED_SCHEMA
from gristmill.connectors.streams.config import StreamTableOptions
from gristmill.connectors.streams.decode import Deserializer, decode
from gristmill.connectors.streams.feed import Delivery, Feed, Position
from gristmill.engines.base import Engine, Relation
from gristmill.errors import EngineError, Fenced, Unassigned
from gristmill.plan.graph import Asset
from gristmill.sql import partial, windows
from gristmill.sql.rewrite import render
from gristmill.state import streams as progress_store
from gristmill.state.lake.environments import switch
from gristmill.state.streams import Progress, literal

_log = logging.getLogger(__name__)

_loops = itertools.count()

_FULL_COLLECT = 60.0
"""Seconds between full garbage collections in the loop (the young generations go every turn)."""

ORIGIN = datetime(2000, 1, 3)
"""Where ``time_bucket`` aligns windows by default; window ends are ORIGIN + k * step."""


def _crash_point(phase: str, _hits: dict[str, int] = {}) -> None:  # noqa: B006 - a per-process count
    """Fault injection for the exactly-once tests: ``GRISTMILL_STREAM_CRASH=phase:N`` kills this
    process (SIGKILL, no cleanup) the N-th time it reaches ``phase``."""
    wanted = os.environ.get("GRISTMILL_STREAM_CRASH")
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != phase:
        return
    _hits[phase] = _hits.get(phase, 0) + 1
    if _hits[phase] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


EPOCH = datetime(1970, 1, 1)

MARKS = pa.schema(
    [
        ("_gm_t", pa.string()),
        ("_gm_p", pa.int32()),
        ("_gm_closed", pa.timestamp("us")),
        ("_gm_until", pa.timestamp("us")),
    ]
)
"""Each owned partition's emitted-until mark and the batch's closing threshold: a view the
batch's statements join to (a partition's rows for windows it emitted already are late)."""


@dataclass(frozen=True)
class _TwoPhase:
    """The statements of a windowed model kept as partial aggregates (``sql/partial.py``)."""

    accumulate: str
    """The batch's open-window rows, aggregated per group, partition and window, into the state
    (SQL text: the same statement runs for every batch)."""
    merge: exp.Query
    """The model's rows of the windows closing, from their partials."""
    forget: str
    """Delete the partials of the windows emitted."""


class Sink(Protocol):
    """Where emitted rows are published besides the lake (Kafka), at least once."""

    def publish(self, values: Sequence[bytes], keys: Sequence[bytes | None]) -> None: ...

    def close(self) -> None: ...


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


@dataclass
class StreamSettings:
    batch_size: int = 200_000
    """Messages per micro-batch at most (bounds memory: one batch is in flight at a time)."""
    max_wait: float = 1.0
    """Seconds a batch waits to fill before it is processed anyway (bounds latency)."""
    stop_when_idle: float | None = None
    """Stop once no message arrived for this many seconds (a bounded run, e.g. a catch-up). A
    process that owns no partition for that long (the group gave it none) stops with an error."""
    compact_every: int = 100
    """Batches written between compactions of the stream's tables (0: never). Each batch leaves
    a small file per table and a version of its offsets; unmerged, every batch reads more of
    them (measured: a batch's offset statements went from 31 to 67 ms over 1,500 batches)."""


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
        self.engine, self.asset, self.model, self.feed = engine, asset, asset.model, feed
        self.options, self.target, self.settings = options, target, settings
        self.deserialize, self.on_commit = deserialize, on_commit
        self.physical = dict(physical)
        self.name = str(target)
        self.state = Relation(target.schema, f"{target.name}__state")
        self.late = Relation(target.schema, f"{target.name}__late")
        self.outbox = Relation(target.schema, f"{target.name}__outbox")
        self.partials = Relation(target.schema, f"{target.name}__partials")
        loop_id = next(_loops)
        self._batch_view = f"_gm_batch_{loop_id}"
        self._marks_view = f"_gm_marks_{loop_id}"
        self._rejected_view = f"_gm_rejected_{loop_id}"
        self._two_phase: _TwoPhase | None = None
        self._written = 0  # batches written since the last compaction
        self.sink = sink
        self.stats = StreamStats(asset.name, self.name)
        self.progress: dict[Position, Progress] = {}
        self.arrived: dict[Position, float] = {}
        self.last_arrival = time.monotonic()
        self._columns: list[str] | None = None
        self._lock = threading.Lock()  # guards progress between the feed's callbacks and the loop

    def prepare(self, env: str) -> None:
        """Create the model's table (and window state) empty if new, and point the environment's
        view at it, so readers see the table from the start."""
        batch = self.engine.register(self._batch_view, self.options.landed_schema().empty_table())
        self.engine.register(self._marks_view, MARKS.empty_table())
        try:
            output = self.engine.describe(self._output(batch).subquery("q"))
            planned = self._plan_two_phase(batch, [c for c, _ in output])
        finally:
            # Each batch's transaction registers the views afresh and drops them before it ends:
            # a name held across transactions could outlive a failed commit.
            self.engine.unregister(self._batch_view)
            self.engine.unregister(self._marks_view)
        with self.engine.transaction():
            self.engine.ensure_table(self.target, output)
            self._columns = [c for c, _ in self.engine.describe(self.engine.table(self.target))]
            if planned is not None:
                self._two_phase, state = planned
                self.engine.ensure_table(self.partials, state)
            switch(self.engine, env, {self.asset.name: self.name}, (), 0)

    def _is_stream(self, batch: exp.Table) -> Callable[[exp.Table], bool]:
        return lambda t: t.name == batch.name and not t.db

    def _output(self, batch: exp.Table) -> exp.Query:
        """The query whose rows the model's table holds (over an empty batch: its columns)."""
        if self.model.window is None:
            return self._query(batch)
        window, time_column, key = self.model.window, self.model.time, self.model.key
        assert time_column is not None
        return windows.replace_table(
            self._query(batch),
            self._is_stream(batch),
            lambda t: windows.windowed(t, time_column, window, key),
        )

    def _plan_two_phase(
        self, batch: exp.Table, names: list[str]
    ) -> tuple[_TwoPhase, list[tuple[str, str]]] | None:
        """The statements keeping a tumbling or hopping model's windows as partial aggregates,
        and the state table's columns; None when the model's SQL does not decompose. Sessions
        merge across batches, so they keep rows."""
        window, time_column, key = self.model.window, self.model.time, self.model.key
        if window is None or window.kind == "session":
            return None
        assert time_column is not None
        query = self._query(batch)
        found = partial.split(query)
        if found is None or len(found.final) != len(names):
            return None
        alias = next(t for t in query.find_all(exp.Table) if self._is_stream(batch)(t)).alias_or_name

        def column(name: str) -> exp.Column:
            return exp.column(name, table=alias, quoted=True)

        extra = [
            (column("_gm_topic"), "_gm_topic"),
            (column("_gm_partition"), "_gm_partition"),
            (exp.cast(column("window_end"), exp.DataType.Type.TIMESTAMP), "_gm_end"),
        ]
        marks = self._marks_view
        accumulate = windows.replace_table(
            found.partial_select(query, extra),  # type: ignore[arg-type]
            self._is_stream(batch),
            lambda t: (
                f"SELECT w.* FROM ({windows.windowed(t, time_column, window, key)}) AS w "
                f"JOIN {marks} AS m ON w._gm_topic = m._gm_t AND w._gm_partition = m._gm_p "
                "WHERE w.window_end::TIMESTAMP > m._gm_closed"
            ),
        )
        state = self._sql(self.partials)
        closing = sqlglot.parse_one(
            f"SELECT s.* FROM {state} AS s JOIN {marks} AS m "
            "ON s._gm_topic = m._gm_t AND s._gm_partition = m._gm_p "
            "WHERE s._gm_end > m._gm_closed AND s._gm_end <= m._gm_until",
            dialect="duckdb",
            into=exp.Select,
        ).subquery("_gm_s")
        try:
            columns = self.engine.describe(accumulate.subquery("q"))
        except EngineError:
            return None  # e.g. an aggregate whose partials do not merge in this engine
        dialect = self.engine.dialect
        plan = _TwoPhase(
            accumulate=exp.insert(accumulate, self.engine.table(self.partials)).sql(dialect=dialect),
            merge=found.final_select(closing, names),
            forget=sqlglot.transpile(
                f"DELETE FROM {state} WHERE _gm_end <= (SELECT max(_gm_until) FROM {marks}) "
                f"AND (_gm_topic, _gm_partition) IN (SELECT _gm_t, _gm_p FROM {marks})",
                read="duckdb",
                write=dialect,
            )[0],
        )
        return plan, columns

    # -- the loop ----------------------------------------------------------------------------------

    def resume(self, positions: list[Position]) -> dict[Position, int]:
        """The feed's assignment callback: where each new partition's committed results end."""
        found = progress_store.read_progress(self.engine, self.name, positions)
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
        unassigned_since: float | None = collected  # owning no partition since (None: owns some)
        joined = False
        try:
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
                if owns:
                    unassigned_since = None
                elif unassigned_since is None or (getattr(self.feed, "joined", True) and not joined):
                    unassigned_since = now  # from when it lost its partitions, or joined with none
                joined = getattr(self.feed, "joined", True)
                idle = self.settings.stop_when_idle
                # Idle time counts only once there is something to read, so a process the group
                # gives no partition would wait for ever: it stops once it has had none for the
                # idle time after joining the group (or, when the group never answers, e.g.
                # while it waits out a member that died, that plus the group's session timeout).
                limit = (
                    None if idle is None else idle if joined else idle + getattr(self.feed, "join_timeout", 0)
                )
                if limit is not None and unassigned_since is not None and now - unassigned_since >= limit:
                    raise Unassigned(
                        f"{self.asset.name}: no partition of {self.asset.stream_input} was assigned to "
                        f"this process for {now - unassigned_since:.0f} s (--stop-when-idle {idle:g}"
                        f"{'' if joined else ', the group never answered'}), so it stops",
                        hint="the other members of the consumer group own every partition (more "
                        "processes than partitions), or the group is still waiting out a member that "
                        "died (session.timeout.ms); `gristmill streams` shows the processes",
                    )
                if idle is not None and owns and not len(delivery) and now - self.last_arrival >= idle:
                    break
                if now - collected < _FULL_COLLECT:
                    gc.collect(1)
                else:
                    gc.collect()
                    collected = now
        finally:
            gc.unfreeze()  # the loop may run inside a longer-lived process (a server, tests)
            if collecting:
                gc.enable()
            self.feed.close()
            if self.sink is not None:
                self.sink.close()
        return self.stats

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
        if delivery is not None:
            expected = {p: self.progress[p].offset for p in delivery.last_offsets() if p in self.progress}
            if self.feed.exactly_once and rows is not None:
                # Messages at or before the committed offset were processed already (a replay).
                rows = self._after_committed(rows, delivery.first_offsets())
            else:
                expected = {}  # positions without replayable offsets (MQTT) cannot be fenced
        else:
            expected = {}
        _crash_point("decoded")
        updated, out, late = self._transaction(delivery, rows, rejected, expected)
        if updated is None:
            return False
        self._written += 1
        with self._lock:
            self.progress.update(updated)
        if out:
            self.publish()
        if delivery is not None and len(delivery):
            self.feed.processed({p: g.offset for p, g in updated.items() if p in delivery.last_offsets()})
            _crash_point("acknowledged")
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
        tables = (
            self.target,
            self.partials,
            self.state,
            self.late,
            self.outbox,
            progress_store.OFFSETS,
            progress_store.REJECTED,
        )
        for table in tables:
            try:
                self.engine.compact(table)
            except EngineError as err:
                _log.info("%s: compacting %s put off: %s", self.asset.name, table, err)
            _crash_point("compacted")
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

    def _transaction(
        self,
        delivery: Delivery | None,
        rows: pa.Table | None,
        rejected: pa.Table | None,
        expected: Mapping[Position, int],
    ) -> tuple[dict[Position, Progress] | None, int, int]:
        """Write one batch in one transaction; returns the partitions' new progress, rows
        emitted and late rows (``None`` when there was nothing to write)."""
        positions = delivery.last_offsets() if delivery is not None else {}
        if not positions:  # a quiet stream: only the clock may close windows
            threshold = self._threshold(self.progress)
            if self.model.window is None or threshold is None or not self._closes(threshold):
                return None, 0, 0
        for attempt in range(5):
            try:
                # Everything, the views of the batch included, inside the transaction: each
                # statement outside one would open and close a lake transaction of its own.
                with self.engine.transaction():
                    written = self._write(positions, rows, rejected, expected)
                    _crash_point("written")
                _crash_point("committed")
                return written
            except EngineError as err:
                # Another writer of the lake committed first: the batch is intact, so try again.
                text = str(err).lower()
                if attempt == 4 or not ("conflict" in text or "locked" in text or "busy" in text):
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _write(
        self,
        positions: Mapping[Position, int],
        rows: pa.Table | None,
        rejected: pa.Table | None,
        expected: Mapping[Position, int],
    ) -> tuple[dict[Position, Progress], int, int]:
        batch = self.engine.register(self._batch_view, rows) if rows is not None and rows.num_rows else None
        try:
            maxes: dict[Position, datetime] = {}
            late_rows = 0
            if batch is not None and self.model.window:
                self._register_marks(None)
                maxes, late_rows = self._scan(batch)
            updated: dict[Position, Progress] = {}
            for position, offset in positions.items():
                old = self.progress.get(position, Progress(-1))
                newest = maxes.get(position)
                updated[position] = Progress(
                    max(offset, old.offset),
                    max(filter(None, (old.max_time, newest)), default=None),
                    old.closed_until,
                )
            threshold = self._threshold({**self.progress, **updated})
            emit = self.model.window is not None and threshold is not None and self._closes(threshold)
            if emit:
                assert threshold is not None
                for position in self.progress:
                    current = updated.get(position) or self.progress[position]
                    if current.closed_until is None or current.closed_until < threshold:
                        updated[position] = Progress(current.offset, current.max_time, threshold)
                self._register_marks(threshold)
            self._fence(expected)
            out = late = 0
            if batch is not None:
                if self.model.window is None:
                    out += self._insert_target(self._query(batch))
                else:
                    late = self._keep(batch, late_rows)
            if emit:
                assert threshold is not None
                out += self._emit(threshold)
            progress_store.write_progress(self.engine, self.name, updated, datetime.now(UTC))
            if rejected is not None and rejected.num_rows:
                self._reject(rejected)
            return updated, out, late
        finally:
            if batch is not None:
                self.engine.unregister(self._batch_view)
            if self.model.window is not None:
                self.engine.unregister(self._marks_view)

    def _fence(self, expected: Mapping[Position, int]) -> None:
        if not expected:
            return
        found = progress_store.read_progress(self.engine, self.name, expected)
        for position, offset in expected.items():
            stored = found.get(position, Progress(-1)).offset
            if stored != offset:
                raise Fenced(
                    f"{self.asset.name}: partition {position[1]} of {position[0]} was committed by "
                    f"another process (at offset {stored}, this one expected {offset})",
                    hint="another `gristmill stream` of this model took the partition over; this "
                    "process stops so nothing is written twice — restart it to rejoin the group",
                )

    # -- SQL -------------------------------------------------------------------------------------

    def _parts(self, table: exp.Table) -> tuple[str | None, str, str]:
        return table.catalog or None, table.db, table.name

    def _query(self, source: exp.Table) -> exp.Query:
        """The model's SQL reading ``source`` as its stream and the environment's tables otherwise."""
        assert self.asset.parsed is not None and self.asset.stream_input is not None
        mapping = {name: self._parts(table) for name, table in self.physical.items()}
        mapping[self.asset.stream_input] = self._parts(source)
        return render(self.asset.parsed, mapping)

    def _insert_target(self, query: exp.Query) -> int:
        if self.sink is not None:
            # The rows go to the table and, as JSON, to the outbox published after the commit.
            staged = self.engine.stage(query)
            try:
                rows = self._insert_rows(exp.select("*").from_(staged))
                self.engine.ensure_table(self.outbox, [("batch", "BIGINT"), ("value", "VARCHAR")])
                self._run(
                    f"INSERT INTO {self._sql(self.outbox)} SELECT {time.time_ns()}, to_json(s)::VARCHAR "
                    f"FROM {staged.sql(dialect='duckdb')} AS s"
                )
            finally:
                self.engine.execute(exp.Drop(tables=[staged], kind="TABLE", exists=True))
            return rows
        return self._insert_rows(query)

    def publish(self) -> int:
        """Send the outbox to the Kafka sink, then delete what the broker acknowledged."""
        if self.sink is None or not self.engine.exists(self.outbox):
            return 0
        pending = self.engine.query(f"SELECT batch, value FROM {self._sql(self.outbox)} ORDER BY batch")
        if not pending.num_rows:
            return 0
        values = [v.encode() for v in pending.column("value").to_pylist()]
        self.sink.publish(values, [None] * len(values))
        last = pending.column("batch")[-1].as_py()
        with self.engine.transaction():
            self._run(f"DELETE FROM {self._sql(self.outbox)} WHERE batch <= {last}")
        return len(values)

    def _insert_rows(self, query: exp.Query) -> int:
        if self._columns is None:
            columns = self.engine.describe(query.subquery("q", copy=True))
            self.engine.ensure_table(self.target, columns)
            self._columns = [c for c, _ in columns]
        names = self._columns
        select = exp.select(*(exp.column(c, quoted=True) for c in names)).from_(
            query.subquery("q", copy=True)
        )
        insert = exp.insert(
            select, self.engine.table(self.target), columns=[exp.to_identifier(c, quoted=True) for c in names]
        )
        return self.engine.execute(insert) or 0

    def _register_marks(self, until: datetime | None) -> None:
        """The marks view for this batch's statements: each owned partition's ``closed_until``
        and the threshold windows close at (``until``)."""
        owned = list(self.progress.items())
        self.engine.register(
            self._marks_view,
            pa.table(
                [
                    [t for (t, _), _ in owned],
                    [p for (_, p), _ in owned],
                    [g.closed_until or EPOCH for _, g in owned],
                    [until] * len(owned),
                ],
                schema=MARKS,
            ),
        )

    def _joined(self, alias: str) -> str:
        """A join giving each row of ``alias`` its partition's marks as ``_gm_marks``."""
        return (
            f"JOIN {self._marks_view} AS _gm_marks "
            f"ON {alias}._gm_topic = _gm_marks._gm_t AND {alias}._gm_partition = _gm_marks._gm_p"
        )

    def _is_late(self) -> str:
        """Whether a row misses a window already emitted for its partition."""
        window, time_column = self.model.window, self.model.time
        assert window is not None and time_column is not None
        return f"({windows.first_window_end(time_column, window)})::TIMESTAMP <= _gm_marks._gm_closed"

    def _scan(self, batch: exp.Table) -> tuple[dict[Position, datetime], int]:
        """Each partition's newest event time in the batch, and how many of its rows are late.

        A window's end only grows with time, so a partition whose oldest row in the batch is not
        late has no late row: the rows are counted one by one only when that oldest one is."""
        assert self.model.time is not None
        time_column = exp.to_identifier(self.model.time, quoted=True).sql(dialect="duckdb")
        source = batch.sql(dialect="duckdb")
        # The oldest time takes the column's name: the lateness test reads it as it reads a row.
        summary = (
            f"SELECT _gm_topic, _gm_partition, max({time_column})::TIMESTAMP AS _gm_newest, "
            f"min({time_column}) AS {time_column} FROM {source} GROUP BY ALL"
        )
        rows = self.engine.query(
            f"SELECT b._gm_topic AS t, b._gm_partition AS p, b._gm_newest AS newest, "
            f"coalesce({self._is_late()}, false) AS late FROM ({summary}) AS b {self._joined('b')}"
        ).to_pylist()
        maxes = {(r["t"], r["p"]): r["newest"] for r in rows if r["newest"] is not None}
        if not any(r["late"] for r in rows):
            return maxes, 0
        (late,) = (
            self.engine.query(
                f"SELECT count(*) AS late FROM {source} AS b {self._joined('b')} WHERE {self._is_late()}"
            )
            .column("late")
            .to_pylist()
        )
        return maxes, late

    def _keep(self, batch: exp.Table, late_rows: int) -> int:
        """The rows for windows still open go to the state (as partial aggregates, or as they
        are); rows missing a window already emitted go to the late table too."""
        window, time_column = self.model.window, self.model.time
        assert window is not None and time_column is not None
        source = batch.sql(dialect="duckdb")
        if late_rows:
            self.engine.ensure_table(self.late, self.engine.describe(batch))
            self._run(
                f"INSERT INTO {self._sql(self.late)} SELECT b.* FROM {source} AS b "
                f"{self._joined('b')} WHERE {self._is_late()}"
            )
        if self._two_phase is not None:
            self.engine.execute(self._two_phase.accumulate)
            return late_rows
        self.engine.ensure_table(self.state, self.engine.describe(batch))
        if window.kind == "session":
            keep = f"NOT ({self._is_late()})"
        else:
            keep = f"({windows.last_window_end(time_column, window)})::TIMESTAMP > _gm_marks._gm_closed"
        self._run(
            f"INSERT INTO {self._sql(self.state)} SELECT b.* FROM {source} AS b "
            f"{self._joined('b')} WHERE {keep}"
        )
        return late_rows

    def _emit(self, threshold: datetime) -> int:
        """Emit the windows ending by ``threshold`` that were not emitted yet, then forget the
        state no open window needs."""
        if self._two_phase is not None:
            rows = self._insert_target(self._two_phase.merge)
            self.engine.execute(self._two_phase.forget)
            return rows
        window, time_column = self.model.window, self.model.time
        assert window is not None and time_column is not None
        if not self.engine.exists(self.state):
            return 0
        state = self.engine.table(self.state)
        until = literal(threshold)
        key = self.model.key

        def closing(table: str) -> str:
            return (
                f"SELECT w.* EXCLUDE (_gm_t, _gm_p, _gm_closed, _gm_until) FROM "
                f"(SELECT * FROM ({windows.windowed(table, time_column, window, key)}) AS _gm_w "
                f"{self._joined('_gm_w')}) AS w "
                f"WHERE w.window_end::TIMESTAMP > w._gm_closed AND w.window_end::TIMESTAMP <= {until}"
            )

        query = windows.replace_table(
            self._query(state), lambda t: t.name == state.name and t.db == state.db, closing
        )
        rows = self._insert_target(query)
        # Only this process's partitions: another one may own the rest and not have emitted them.
        owned = f"(_gm_topic, _gm_partition) IN (SELECT _gm_t, _gm_p FROM {self._marks_view})"
        if window.kind == "session":
            windowed = windows.windowed(self._sql(self.state), time_column, window, key)
            self._run(
                f"DELETE FROM {self._sql(self.state)} WHERE {owned} AND "
                "(_gm_topic, _gm_partition, _gm_offset) IN "
                f"(SELECT _gm_topic, _gm_partition, _gm_offset FROM ({windowed}) "
                f"WHERE window_end::TIMESTAMP <= {until})"
            )
        else:
            last = windows.last_window_end(time_column, window)
            self._run(f"DELETE FROM {self._sql(self.state)} WHERE {owned} AND ({last})::TIMESTAMP <= {until}")
        return rows

    def _reject(self, rejected: pa.Table) -> None:
        self.engine.ensure_table(progress_store.REJECTED, list(progress_store.REJECTED_COLUMNS))
        # A view of the Arrow table, as for the batch (a staged copy cost a table's creation and
        # drop per batch); registered and dropped inside the batch's transaction.
        view = self.engine.register(self._rejected_view, rejected.select(REJECTED_SCHEMA.names))
        try:
            self._run(
                f"INSERT INTO {self._sql(progress_store.REJECTED)} SELECT {literal(self.name)}, *, now() "
                f"FROM {view.sql(dialect='duckdb')}"
            )
        finally:
            self.engine.unregister(self._rejected_view)

    def _sql(self, relation: Relation) -> str:
        return self.engine.table(relation).sql(dialect="duckdb")

    def _run(self, text: str) -> None:
        self.engine.execute(sqlglot.parse_one(text, dialect="duckdb"))

    # -- watermarks ------------------------------------------------------------------------------

    def _watermark(self, progress: Mapping[Position, Progress] | None = None) -> datetime | None:
        """The oldest newest-event-time of the partitions that are not idle; all idle: the newest
        one moved on by the wall-clock time since the last message."""
        progress = self.progress if progress is None else progress
        owned = self.feed.assigned() or set(progress)
        idle = self.model.idle_timeout.total_seconds()
        now = time.monotonic()
        behind = self.feed.lag()
        active: list[datetime] = []
        for position in owned:
            g = progress.get(position)
            # Quiet: nothing arrived for a while and nothing is waiting to be read (a partition
            # whose messages are just slow to come is not idle).
            quiet = now - self.arrived.get(position, now) >= idle and not behind.get(position)
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
        return max(seen) + timedelta(seconds=now - self.last_arrival)

    def _threshold(self, progress: Mapping[Position, Progress]) -> datetime | None:
        watermark = self._watermark(progress)
        return None if watermark is None else watermark - self.model.lateness

    def _closes(self, threshold: datetime) -> bool:
        """Whether windows end between what was emitted and ``threshold``."""
        marks = [g.closed_until for g in self.progress.values()]
        if not marks:
            return False
        oldest = min((m for m in marks if m is not None), default=None)
        if oldest is None:
            return True
        if threshold <= oldest:
            return False
        window = self.model.window
        assert window is not None
        if window.kind == "session":
            return True
        step = (window.every or window.size).total_seconds()
        return (threshold - ORIGIN).total_seconds() // step > (oldest - ORIGIN).total_seconds() // step
