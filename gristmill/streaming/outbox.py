"""Rows a stream emits, published to a Kafka topic besides the lake, at least once.

The rows go, in the batch's transaction, to the target and (as JSON) to an outbox table; after
the commit the outbox is sent and what the broker acknowledged deleted. A process killed in
between sends the rest when it starts again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from sqlglot import exp

from gristmill.engines.base import Relation, StreamingEngine
from gristmill.sql import types
from gristmill.streaming import statements


class Sink(Protocol):
    """Where emitted rows are published besides the lake (Kafka), at least once."""

    def publish(self, values: Sequence[bytes], keys: Sequence[bytes | None]) -> None: ...

    def close(self) -> None: ...


class Outbox:
    """The outbox table of one stream model and the sink it is published to."""

    COLUMNS = (("batch", "BIGINT"), ("value", "VARCHAR"))

    def __init__(self, engine: StreamingEngine, relation: Relation, sink: Sink) -> None:
        self.engine, self.relation, self.sink = engine, relation, sink

    def record(self, staged: exp.Table) -> None:
        """Keep the staged rows for publishing; inside the batch's transaction."""
        self.engine.ensure_table(self.relation, types.columns(self.COLUMNS))
        table = self.engine.table(self.relation)
        self.engine.execute(statements.insert_outbox(table, staged, time.time_ns()))

    def publish(self) -> int:
        """Send the outbox to the sink, then delete what the broker acknowledged."""
        if not self.engine.exists(self.relation):
            return 0
        table = self.engine.table(self.relation)
        pending = self.engine.query(statements.read_outbox(table))
        if not pending.num_rows:
            return 0
        values = [v.encode() for v in pending.column("value").to_pylist()]
        self.sink.publish(values, [None] * len(values))
        last = pending.column("batch")[-1].as_py()
        with self.engine.transaction():
            self.engine.execute(statements.clear_outbox(table, last))
        return len(values)

    def close(self) -> None:
        self.sink.close()
