"""``kind: kafka`` as a batch source: ``gristmill run`` lands a topic as a raw table, every
partition from its earliest message up to the end it had when the read began.

The read assigns partitions itself and commits nothing, so it never disturbs the consumer group
of a streaming run of the same source; ``feed(table)`` is how that streaming run reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from gristmill.connectors.base import BATCH_ROWS
from gristmill.connectors.kafka.config import (
    KafkaTableOptions,
    group_of,
    source_options,
    table_options,
    topic_of,
)
from gristmill.connectors.kafka.feed import (
    BrokerWatch,
    KafkaFeed,
    add,
    avro_deserializer,
    connect,
    describe,
    partitions,
    reachable,
    schema_registry,
    take,
)
from gristmill.connectors.kafka.sink import KafkaSink
from gristmill.connectors.streams.decode import Deserializer, decode
from gristmill.connectors.streams.feed import Delivery
from gristmill.errors import SourceError, TransientSourceError
from gristmill.project.specs import SourceSpec, SourceTable

BATCH_BYTES = 32 << 20
"""Message bytes decoded at once, at most: large messages make smaller batches."""


@dataclass
class _Rejects:
    """Undecodable messages seen so far: how many, and the first one's place and reason."""

    count: int = 0
    first: str = ""

    def add(self, rejected: pa.Table) -> None:
        if rejected.num_rows and not self.count:
            row = rejected.slice(0, 1).to_pylist()[0]
            self.first = f"partition {row['partition']} offset {row['offset']}: {row['reason']}"
        self.count += rejected.num_rows


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = source_options(spec)
        self.tables = {key: table_options(spec, table, self.options) for key, table in spec.tables.items()}
        self._registry: Any = None

    def __repr__(self) -> str:
        return f"kafka.Source({self.spec.file})"

    # -- the Source protocol ---------------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """The declared payload columns and the message metadata: no broker is asked."""
        return self.tables[table.key].landed_schema()

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        """Every message up to each partition's end as measured now (``since`` is ignored: a
        topic has no cursor that spans partitions; a streaming run lands it incrementally).

        The brokers are asked for partitions and ends here, so an unreachable cluster or a
        missing topic fails the call itself rather than the first batch."""
        options = self.tables[table.key]
        topic = topic_of(table, options)
        deserialize = self.deserializer(table)
        watch = BrokerWatch(describe(self.spec, self.options, topic), self.options.timeout)
        consumer = connect(self.spec, self.options, self.root, group_of(self.spec, self.options), watch)
        try:
            ends = _ends(consumer, topic, watch)
            consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        except BaseException:
            consumer.close()
            raise
        batches = _batches(
            consumer, topic, {p: high for p, (_, high) in ends.items()}, options, deserialize, watch
        )
        return pa.RecordBatchReader.from_batches(options.landed_schema(), batches)

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # ends move with every produce; a read is what tells what is new

    def close(self) -> None:
        """Nothing held: each read closes its own consumer."""

    # -- streaming ---------------------------------------------------------------------------------------

    def sink(self, topic: str) -> KafkaSink:
        """A producer to ``topic`` on this source's brokers (a stream model's ``publish:``)."""
        return KafkaSink(self.spec, self.options, self.root, topic)

    def feed(self, table: SourceTable) -> KafkaFeed:
        """The table's topic as a consumer-group feed, for the streaming loop (sharing the
        source's Schema Registry client: ``mock://`` registries live in that one object)."""
        registry = self.schema_registry() if self.tables[table.key].format in ("avro", "protobuf") else None
        return KafkaFeed(self.spec, table, self.root, registry=registry)

    def schema_registry(self) -> Any:
        """The source's Schema Registry client, made once (its cache of schemas is shared by
        every read and feed of the source)."""
        if self._registry is None:
            self._registry = schema_registry(self.spec, self.options, self.root)
        return self._registry

    def deserializer(self, table: SourceTable) -> Deserializer | None:
        options = self.tables[table.key]
        if options.format not in ("avro", "protobuf"):
            return None
        where = describe(self.spec, self.options, topic_of(table, options))
        if options.format == "protobuf":
            from gristmill.connectors.kafka.protobuf import protobuf_deserializer  # slow to import

            return protobuf_deserializer(self.schema_registry(), where)
        return avro_deserializer(self.schema_registry(), where)


def _ends(consumer: Consumer, topic: str, watch: BrokerWatch) -> dict[int, tuple[int, int]]:
    """(first offset, end) of each partition holding messages now."""
    ends: dict[int, tuple[int, int]] = {}
    for partition in partitions(consumer, topic, watch):
        try:
            marks = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=watch.timeout)
        except KafkaException:
            marks = None
        if marks is None:
            consumer.poll(0)  # serve error_cb for the reason
            raise watch.unreachable()
        low, high = marks
        if high > low:
            ends[partition] = (low, high)
    return ends


def _batches(
    consumer: Consumer,
    topic: str,
    ends: dict[int, int],
    options: KafkaTableOptions,
    deserialize: Deserializer | None,
    watch: BrokerWatch,
) -> Iterator[pa.RecordBatch]:
    """Consume until every partition's position reaches its end, decoding up to ``BATCH_ROWS``
    messages at a time; undecodable ones fail the read once all were counted."""
    schema = options.landed_schema()
    rejects = _Rejects()
    pending, size = Delivery(), 0
    last_message = time.monotonic()
    remaining = dict(ends)
    try:
        while remaining:
            messages = take(consumer, BATCH_ROWS - len(pending), 0.5)
            for message in messages:
                error = message.error()
                if error is not None:
                    watch.message_error(error)
                elif _before_end(message, remaining):  # later ones are for the next run
                    add(pending, message)
                    size += len(message.value() or b"")
            if messages:
                last_message = time.monotonic()
                watch.alive()
            watch.check(lambda: reachable(consumer, topic, watch))
            _drop_finished(consumer, topic, remaining)
            if remaining and time.monotonic() - last_message > watch.timeout:
                raise _stalled(consumer, topic, remaining, watch)
            if pending and (not remaining or len(pending) >= BATCH_ROWS or size >= BATCH_BYTES):
                yield from _decoded(pending, options, deserialize, schema, rejects)
                pending, size = Delivery(), 0
    finally:
        consumer.close()
    if rejects.count:
        raise SourceError(
            f"{watch.where}: {rejects.count} message(s) could not be decoded as {options.format}; "
            f"the first, {rejects.first}",
            hint="fix the producer or the table's format/columns; a streaming run sends such messages "
            "to a dead-letter table instead of failing",
        )


def _decoded(
    delivery: Delivery,
    options: KafkaTableOptions,
    deserialize: Deserializer | None,
    schema: pa.Schema,
    rejects: _Rejects,
) -> Iterator[pa.RecordBatch]:
    rows, rejected = decode(delivery, options, deserialize)
    rejects.add(rejected)
    if rows.num_rows:
        yield from rows.cast(schema).combine_chunks().to_batches()


def _before_end(message: Message, ends: dict[int, int]) -> bool:
    offset, partition = message.offset(), message.partition()
    return offset is not None and partition is not None and offset < ends.get(partition, -1)


def _drop_finished(consumer: Consumer, topic: str, remaining: dict[int, int]) -> None:
    """Forget (and pause) partitions whose next offset reached the end measured at the start.
    The consumer's position also steps over transaction markers, which no message carries."""
    positions = consumer.position([TopicPartition(topic, p) for p in remaining])
    done = [tp for tp in positions if tp.offset >= remaining[tp.partition]]
    if done:
        consumer.pause(done)
        for tp in done:
            del remaining[tp.partition]


def _stalled(
    consumer: Consumer, topic: str, remaining: dict[int, int], watch: BrokerWatch
) -> TransientSourceError:
    positions = {
        tp.partition: tp.offset for tp in consumer.position([TopicPartition(topic, p) for p in remaining])
    }
    where = ", ".join(
        f"partition {p} at {positions.get(p, '?') if positions.get(p, -1) >= 0 else 'its start'} of {end}"
        for p, end in sorted(remaining.items())
    )
    return TransientSourceError(
        f"{watch.where}: no message for {watch.timeout:g} s before the end of the topic ({where})",
        hint="the brokers may be overloaded or the messages gone (retention); raise timeout: or retry",
    )
