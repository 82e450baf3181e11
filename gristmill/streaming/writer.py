"""One batch of a stream model, written in one transaction holding everything it changes: the
model's new rows, the window state, late and rejected messages, and each partition's last
offset and watermark. A process killed anywhere leaves the lake as the last commit left it.

A windowed model whose aggregates decompose keeps partial aggregates (``twophase``); any other
keeps the rows of its open windows and runs its SQL over them when they close, exactly as it
runs over the landed table in batch mode. Rows for windows already emitted go to ``__late``."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pyarrow as pa
from sqlglot import exp

from gristmill.connectors.streams.config import REJECTED as REJECTED_SCHEMA
from gristmill.connectors.streams.config import StreamTableOptions
from gristmill.connectors.streams.feed import Position
from gristmill.engines.base import Column, Relation, StreamingEngine
from gristmill.errors import EngineError, Fenced
from gristmill.plan.graph import Asset
from gristmill.sql import types
from gristmill.sql.render import render
from gristmill.sql.rewrite import render as point_at
from gristmill.state.lake import offsets
from gristmill.state.lake.environments import switch
from gristmill.state.lake.offsets import Progress
from gristmill.streaming import faults, statements, twophase, watermarks
from gristmill.streaming.outbox import Outbox

_writers = itertools.count()

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

Threshold = Callable[[Mapping[Position, Progress]], datetime | None]
"""Where windows close given the partitions' progress (the watermark less ``lateness``)."""

Written = tuple[dict[Position, Progress] | None, int, int]
"""A batch's partitions' new progress (None: nothing written), rows emitted and late rows."""


class Writer:
    """Writes the batches of one stream model: ``asset`` into ``target``, joining the tables in
    ``physical`` (asset -> its table in the environment)."""

    def __init__(
        self,
        engine: StreamingEngine,
        asset: Asset,
        target: Relation,
        physical: Mapping[str, exp.Table],
        outbox: Outbox | None,
    ) -> None:
        assert asset.model is not None and asset.parsed is not None and asset.stream_input
        self.engine, self.asset, self.model, self.target = engine, asset, asset.model, target
        self.physical, self.outbox = dict(physical), outbox
        self.name = str(target)
        self.state = Relation(target.schema, f"{target.name}__state")
        self.late = Relation(target.schema, f"{target.name}__late")
        self.partials = Relation(target.schema, f"{target.name}__partials")
        number = next(_writers)
        self.batch_view = f"_gm_batch_{number}"
        self.marks_view = f"_gm_marks_{number}"
        self.rejected_view = f"_gm_rejected_{number}"
        self.marks = exp.to_table(self.marks_view)
        self.two_phase: twophase.TwoPhase | None = None
        self.columns: list[str] | None = None
        self.batch_columns: list[str] | None = None
        """The landed columns of a batch (and of the rows kept for open windows)."""
        self._rendered: dict[str, str] = {}

    def prepare(self, options: StreamTableOptions, env: str) -> None:
        """Create the model's table (and window state) empty if new, and point the environment's
        view at it, so readers see the table from the start."""
        landed = options.landed_schema()
        self.batch_columns = list(landed.names)
        batch = self.engine.register(self.batch_view, landed.empty_table())
        self.engine.register(self.marks_view, MARKS.empty_table())
        try:
            output = self.engine.describe(self._output(batch).subquery("q"))
            planned = self._plan_two_phase(batch, [c for c, _ in output])
        finally:
            # Each batch's transaction registers the views afresh and drops them before it ends:
            # a name held across transactions could outlive a failed commit.
            self.engine.unregister(self.batch_view)
            self.engine.unregister(self.marks_view)
        with self.engine.transaction():
            self.engine.ensure_table(self.target, output)
            self.columns = [c for c, _ in self.engine.describe(self.engine.table(self.target))]
            if planned is not None:
                self.two_phase, state = planned
                self.engine.ensure_table(self.partials, state)
            switch(self.engine, env, {self.asset.name: self.name}, (), 0)

    def _is_stream(self, batch: exp.Table) -> Callable[[exp.Table], bool]:
        return lambda t: t.name == batch.name and not t.db

    def _windowing(self) -> twophase.Windowing:
        window, time_column = self.model.window, self.model.time
        assert window is not None and time_column is not None
        return twophase.Windowing(window, time_column, tuple(self.model.key))

    def _output(self, batch: exp.Table) -> exp.Query:
        """The query whose rows the model's table holds (over an empty batch: its columns)."""
        if self.model.window is None:
            return self.query(batch)
        w = self._windowing()
        return statements.replace_stream(
            self.query(batch),
            self._is_stream(batch),
            lambda t: statements.windowed(t, w.time, w.window, w.key, self.batch_columns),
        )

    def _plan_two_phase(
        self, batch: exp.Table, names: list[str]
    ) -> tuple[twophase.TwoPhase, list[Column]] | None:
        if self.model.window is None:
            return None
        partials = self.engine.table(self.partials)
        return twophase.plan(
            self.engine,
            self.query(batch),
            self._is_stream(batch),
            self._windowing(),
            names,
            partials,
            self.marks,
        )

    def query(self, source: exp.Table) -> exp.Query:
        """The model's SQL reading ``source`` as its stream and the environment's tables otherwise."""
        assert self.asset.parsed is not None and self.asset.stream_input is not None
        mapping = {name: _parts(table) for name, table in self.physical.items()}
        mapping[self.asset.stream_input] = _parts(source)
        return point_at(self.asset.parsed, mapping)

    # -- one batch ---------------------------------------------------------------------------------

    def transaction(
        self,
        positions: Mapping[Position, int],
        rows: pa.Table | None,
        rejected: pa.Table | None,
        expected: Mapping[Position, int],
        progress: Mapping[Position, Progress],
        threshold: Threshold,
    ) -> Written:
        """Write one batch (``positions``: each partition's last offset in it; none: a quiet
        stream, where only the clock may close windows) in one transaction, after checking the
        lake still holds the ``expected`` offsets."""
        if not positions:
            closing = threshold(progress)
            if closing is None or not self._closes(closing, progress):
                return None, 0, 0
        for attempt in range(5):
            try:
                # Everything, the views of the batch included, inside the transaction: each
                # statement outside one would open and close a lake transaction of its own.
                with self.engine.transaction():
                    written = self._write(positions, rows, rejected, expected, progress, threshold)
                    faults.reached("written")
                faults.reached("committed")
                return written
            except EngineError as err:
                # Another writer of the lake committed first: the batch is intact, so try again.
                text = str(err).lower()
                if attempt == 4 or not ("conflict" in text or "locked" in text or "busy" in text):
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _closes(self, threshold: datetime, progress: Mapping[Position, Progress]) -> bool:
        window = self.model.window
        return window is not None and watermarks.closes(
            threshold, [g.closed_until for g in progress.values()], window
        )

    def _write(
        self,
        positions: Mapping[Position, int],
        rows: pa.Table | None,
        rejected: pa.Table | None,
        expected: Mapping[Position, int],
        progress: Mapping[Position, Progress],
        threshold_of: Threshold,
    ) -> tuple[dict[Position, Progress], int, int]:
        batch = self.engine.register(self.batch_view, rows) if rows is not None and rows.num_rows else None
        try:
            maxes: dict[Position, datetime] = {}
            late_rows = 0
            if batch is not None and self.model.window:
                self._register_marks(progress, None)
                maxes, late_rows = self._scan(batch)
            updated: dict[Position, Progress] = {}
            for position, offset in positions.items():
                old = progress.get(position, Progress(-1))
                newest = maxes.get(position)
                updated[position] = Progress(
                    max(offset, old.offset),
                    max(filter(None, (old.max_time, newest)), default=None),
                    old.closed_until,
                )
            threshold = threshold_of({**progress, **updated})
            emit = threshold is not None and self._closes(threshold, progress)
            if emit:
                assert threshold is not None
                for position in progress:
                    current = updated.get(position) or progress[position]
                    if current.closed_until is None or current.closed_until < threshold:
                        updated[position] = Progress(current.offset, current.max_time, threshold)
                self._register_marks(progress, threshold)
            self._fence(expected)
            out = late = 0
            if batch is not None:
                if self.model.window is None:
                    out += self.insert_target(self.query(batch))
                else:
                    late = self._keep(batch, late_rows)
            if emit:
                assert threshold is not None
                out += self._emit(threshold)
            offsets.write_progress(self.engine, self.name, updated, datetime.now(UTC))
            if rejected is not None and rejected.num_rows:
                self._reject(rejected)
            return updated, out, late
        finally:
            if batch is not None:
                self.engine.unregister(self.batch_view)
            if self.model.window is not None:
                self.engine.unregister(self.marks_view)

    def _fence(self, expected: Mapping[Position, int]) -> None:
        if not expected:
            return
        found = offsets.read_progress(self.engine, self.name, expected)
        for position, offset in expected.items():
            stored = found.get(position, Progress(-1)).offset
            if stored != offset:
                raise Fenced(
                    f"{self.asset.name}: partition {position[1]} of {position[0]} was committed by "
                    f"another process (at offset {stored}, this one expected {offset})",
                    hint="another `gristmill stream` of this model took the partition over; this "
                    "process stops so nothing is written twice — restart it to rejoin the group",
                )

    # -- statements ------------------------------------------------------------------------------

    def _static(self, name: str, build: Callable[[], exp.Expr]) -> str:
        """A statement the same for every batch (over the batch's and marks' views), rendered
        once: rendering it costs as much as running it on a small batch."""
        found = self._rendered.get(name)
        if found is None:
            found = self._rendered[name] = render(build(), self.engine.dialect)
        return found

    def insert_target(self, query: exp.Query) -> int:
        if self.outbox is not None:
            # The rows go to the table and, as JSON, to the outbox published after the commit.
            staged = self.engine.stage(query)
            try:
                rows = self._insert_rows(exp.select("*").from_(staged))
                self.outbox.record(staged)
            finally:
                self.engine.execute(exp.Drop(tables=[staged], kind="TABLE", exists=True))
            return rows
        return self._insert_rows(query)

    def _insert_rows(self, query: exp.Query) -> int:
        if self.columns is None:
            columns = self.engine.describe(query.subquery("q", copy=True))
            self.engine.ensure_table(self.target, columns)
            self.columns = [c for c, _ in columns]
        names = self.columns
        select = exp.select(*(exp.column(c, quoted=True) for c in names)).from_(
            query.subquery("q", copy=True)
        )
        insert = exp.insert(
            select, self.engine.table(self.target), columns=[exp.to_identifier(c, quoted=True) for c in names]
        )
        return self.engine.execute(insert) or 0

    def _register_marks(self, progress: Mapping[Position, Progress], until: datetime | None) -> None:
        """The marks view for this batch's statements: each owned partition's ``closed_until``
        and the threshold windows close at (``until``)."""
        owned = list(progress.items())
        self.engine.register(
            self.marks_view,
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

    def _scan(self, batch: exp.Table) -> tuple[dict[Position, datetime], int]:
        """Each partition's newest event time in the batch, and how many of its rows are late
        (counted one by one only when a partition's oldest row is)."""
        w = self._windowing()
        scan = self._static("scan", lambda: statements.scan(batch, self.marks, w.time, w.window))
        rows = self.engine.query(scan).to_pylist()
        maxes = {(r["t"], r["p"]): r["newest"] for r in rows if r["newest"] is not None}
        if not any(r["late"] for r in rows):
            return maxes, 0
        count = self._static("count_late", lambda: statements.count_late(batch, self.marks, w.time, w.window))
        counted = self.engine.query(count)
        (late,) = counted.column("late").to_pylist()
        return maxes, late

    def _keep(self, batch: exp.Table, late_rows: int) -> int:
        """The rows for windows still open go to the state (as partial aggregates, or as they
        are); rows missing a window already emitted go to the late table too."""
        w = self._windowing()
        if late_rows:
            self.engine.ensure_table(self.late, self.engine.describe(batch))
            late = self.engine.table(self.late)
            insert = self._static(
                "insert_late",
                lambda: exp.insert(statements.late_rows(batch, self.marks, w.time, w.window), late),
            )
            self.engine.execute(insert)
        if self.two_phase is not None:
            self.engine.execute(self.two_phase.accumulate)
            return late_rows
        self.engine.ensure_table(self.state, self.engine.describe(batch))
        state = self.engine.table(self.state)
        insert = self._static(
            "insert_open",
            lambda: exp.insert(statements.open_rows(batch, self.marks, w.time, w.window), state),
        )
        self.engine.execute(insert)
        return late_rows

    def _emit(self, threshold: datetime) -> int:
        """Emit the windows ending by ``threshold`` that were not emitted yet, then forget the
        state no open window needs."""
        if self.two_phase is not None:
            rows = self.insert_target(self.two_phase.merge)
            self.engine.execute(self.two_phase.forget)
            return rows
        if not self.engine.exists(self.state):
            return 0
        w = self._windowing()
        state = self.engine.table(self.state)
        until = offsets.value(threshold)

        def closing(table: exp.Table) -> exp.Query:
            return statements.closing_rows(
                table, self.marks, until, w.time, w.window, w.key, self.batch_columns
            )

        query = statements.replace_stream(
            self.query(state), lambda t: t.name == state.name and t.db == state.db, closing
        )
        rows = self.insert_target(query)
        forget = statements.forget_closed(
            state, self.marks, until, w.time, w.window, w.key, self.batch_columns
        )
        self.engine.execute(forget)
        return rows

    def _reject(self, rejected: pa.Table) -> None:
        self.engine.ensure_table(offsets.REJECTED, types.columns(offsets.REJECTED_COLUMNS))
        # A view of the Arrow table, as for the batch (a staged copy cost a table's creation and
        # drop per batch); registered and dropped inside the batch's transaction.
        view = self.engine.register(self.rejected_view, rejected.select(REJECTED_SCHEMA.names))
        try:
            table = self.engine.table(offsets.REJECTED)
            self.engine.execute(statements.insert_rejected(table, view, self.name))
        finally:
            self.engine.unregister(self.rejected_view)


def _parts(table: exp.Table) -> tuple[str | None, str, str]:
    return table.catalog or None, table.db, table.name
