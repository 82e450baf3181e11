"""A Kafka topic as a ``Feed``: a consumer-group member that starts each partition it is given
right after the offset the lake last committed for it.

The group's own committed offsets are never read back: they are written after the lake commits,
for lag tools only, so a crash between the two costs nothing but a stale lag figure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.kafka.config import (
    KafkaSourceOptions,
    KafkaTableOptions,
    consumer_config,
    group_of,
    incremental,
    registry_config,
    source_options,
    table_options,
    topic_of,
)
from gristmill.connectors.kafka.registry import registry_failures
from gristmill.connectors.streams.decode import Deserializer
from gristmill.connectors.streams.feed import Delivery, Position, Resume
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project.specs import SourceSpec, SourceTable

log = logging.getLogger("gristmill.kafka")

TERMINAL = {
    KafkaError._AUTHENTICATION: "check the credentials under options: (security.protocol, sasl.*)",
    KafkaError.SASL_AUTHENTICATION_FAILED: "check sasl.username and sasl.password under options:",
    KafkaError._SSL: "check the ssl.* settings under options: and the broker's certificate",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "the principal needs Read and Describe on the topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "the principal needs Read on the consumer group (group:)",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "the principal lacks a cluster permission the read needs",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "check the table's topic: (it defaults to the table key)",
    KafkaError._UNKNOWN_TOPIC: "check the table's topic: (it defaults to the table key)",
}
"""Errors retrying cannot fix, with what to do about each."""

UNREACHABLE_HINT = (
    "check brokers: and that this machine can reach them (firewall, the brokers' advertised "
    "listeners, security.protocol under options:)"
)


class _LibrdkafkaLog:
    """librdkafka's own log, routed to Python logging at debug level: it repeats every retry of
    an unreachable broker, and what matters of it reaches the user as one error instead."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)


def describe(spec: SourceSpec, options: KafkaSourceOptions, topic: str) -> str:
    """How every error names a table's topic: source file, topic and brokers (as written)."""
    return f'{spec.file}: Kafka topic "{topic}" on {options.bootstrap}'


class BrokerWatch:
    """Turns librdkafka's error reports into one clear ``SourceError``.

    librdkafka retries broker trouble forever and tells only through ``error_cb``, served while
    the consumer polls; the watch keeps what it heard so the next poll can raise, naming the
    source file, the brokers and the topic, never with a librdkafka traceback."""

    def __init__(self, where: str, timeout: float) -> None:
        self.where = where
        self.timeout = timeout
        self.fatal: KafkaError | None = None
        self.down_since: float | None = None
        self.detail = ""
        self.sink = _LibrdkafkaLog()

    def error_cb(self, error: KafkaError) -> None:
        code = error.code()
        if error.fatal() or code in TERMINAL:
            self.fatal = self.fatal or error
        elif code == KafkaError._ALL_BROKERS_DOWN:
            self.down_since = self.down_since or time.monotonic()
        elif code in (KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.detail = error.str()  # the reason behind "all brokers are down"
        else:
            log.warning("%s: %s", self.where, redact(error.str()))

    def alive(self) -> None:
        """A message arrived: some broker answers."""
        self.down_since = None

    def check(self, probe: Callable[[], bool]) -> None:
        """Raise for a fatal error, or when no broker has answered for ``timeout`` seconds and a
        metadata request (``probe``) confirms it; brokers that came back clear the alarm."""
        if self.fatal is not None:
            raise self.failed(self.fatal)
        if self.down_since is not None and time.monotonic() - self.down_since >= self.timeout:
            if not probe():
                raise self.unreachable()
            self.down_since = None

    def message_error(self, error: KafkaError) -> None:
        """An error the consumer handed out as a message: fatal ones raise, others are logged."""
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or error.code() in TERMINAL:
            raise self.failed(error)
        log.warning("%s: %s", self.where, redact(error.str()))

    def failed(self, error: KafkaError) -> SourceError:
        return SourceError(
            f"{self.where}: {redact(error.str())}",
            hint=TERMINAL.get(error.code(), "see the broker's logs; rerun once it is fixed"),
        )

    def unreachable(self) -> TransientSourceError:
        detail = f" (last error: {redact(self.detail)})" if self.detail else ""
        return TransientSourceError(
            f"{self.where}: no broker answered within {self.timeout:g} s{detail}", hint=UNREACHABLE_HINT
        )


def connect(
    spec: SourceSpec, options: KafkaSourceOptions, root: Path, group: str, watch: BrokerWatch
) -> Consumer:
    config = consumer_config(spec, options, root, group=group, error_cb=watch.error_cb, logger=watch.sink)
    try:
        return Consumer(config)
    except KafkaException as err:  # an unknown or invalid librdkafka setting under options:
        raise ConfigError(
            f"options: {redact(err.args[0].str())}",
            location=spec.where("options"),
            hint="options: takes librdkafka settings (see librdkafka's CONFIGURATION.md)",
        ) from None


def partitions(consumer: Consumer, topic: str, watch: BrokerWatch) -> list[int]:
    """The topic's partitions, from the brokers' metadata; a clear error when the brokers cannot
    be reached within the timeout or the topic does not exist."""
    try:
        metadata = consumer.list_topics(topic, timeout=watch.timeout)
    except KafkaException:
        consumer.poll(0)  # serve error_cb: it carries the reason (refused, unresolved, TLS ...)
        raise watch.unreachable() from None
    found = metadata.topics.get(topic)
    if found is not None and found.error is None and found.partitions:
        return sorted(found.partitions)
    missing = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
    if found is not None and found.error is not None and found.error.code() not in missing:
        raise watch.failed(found.error)
    try:
        listed = consumer.list_topics(timeout=watch.timeout).topics
    except KafkaException:
        listed = {}
    names = sorted(name for name in listed if not name.startswith("__"))
    listing = "topics: " + ", ".join(names) if names else "the cluster has no topics"
    raise SourceError(f"{watch.where}: no such topic", hint=did_you_mean(topic, names) or listing)


def reachable(consumer: Consumer, topic: str, watch: BrokerWatch) -> bool:
    """Whether a broker answers a metadata request now (the watch's probe)."""
    try:
        consumer.list_topics(topic, timeout=min(watch.timeout, 5.0))
    except KafkaException:
        return False
    return True


def take(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Up to ``max_messages`` messages, waiting at most ``timeout`` for the first only.

    ``consume()`` waits until its batch is full or its timeout passes, so a quiet topic would
    cost the whole timeout on every call; here what is queued is taken at once, and only an
    empty queue waits, for one message."""
    messages: list[Message] = consumer.consume(num_messages=max_messages, timeout=0)
    if messages:
        return messages
    first = consumer.poll(timeout)
    if first is None:
        return []
    if max_messages == 1:
        return [first]
    return [first, *consumer.consume(num_messages=max_messages - 1, timeout=0)]


_CHUNK = 50_000
"""Messages taken from librdkafka at a time: their Python objects live until the chunk's columns
are taken (a batch is several chunks)."""


def _timestamps(messages: list[Message]) -> list[int | None]:
    """Each message's timestamp in milliseconds, None where the broker gave none."""
    stamps = list(map(Message.timestamp, messages))
    if TIMESTAMP_NOT_AVAILABLE not in map(itemgetter(0), stamps):  # the usual case, at C speed
        return list(map(itemgetter(1), stamps))
    return [None if kind == TIMESTAMP_NOT_AVAILABLE else stamp for kind, stamp in stamps]


def add(delivery: Delivery, message: Message) -> None:
    """Append a message (not an error: those have no topic, partition or offset)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    kind, stamp = message.timestamp()
    delivery.add(
        message.value(),
        message.key(),
        topic,
        partition,
        offset,
        None if kind == TIMESTAMP_NOT_AVAILABLE else stamp,
    )


def schema_registry(spec: SourceSpec, options: KafkaSourceOptions, root: Path) -> Any:
    """A Schema Registry client (``mock://`` URLs give an in-process one)."""
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as err:
        raise ConfigError(
            f"schema_registry needs a Python package that is not installed ({err.name})",
            location=spec.where("schema_registry"),
            hint="pip install 'confluent-kafka[avro]'",
        ) from None
    try:
        return SchemaRegistryClient.new_client(registry_config(spec, options, root))
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"schema_registry: {redact(str(err))}", location=spec.where("schema_registry")
        ) from None


def avro_deserializer(registry: Any, where: str) -> Deserializer:
    """Confluent-framed Avro values (magic byte, schema id, body) to records; the writer's
    schema is fetched from the registry once per id.

    A registry that cannot be reached or refuses the credentials raises a ``SourceError``: that
    is no fault of the message, which must not be set aside as undecodable for it."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    avro = AvroDeserializer(registry)

    def deserialize(value: bytes, topic: str) -> dict[str, Any]:
        with registry_failures(where):
            record: dict[str, Any] = avro(value, SerializationContext(topic, MessageField.VALUE))
        return record

    return deserialize


class KafkaFeed:
    """One table's topic, read as a member of the source's consumer group."""

    exactly_once = True

    def __init__(self, spec: SourceSpec, table: SourceTable, root: Path, *, registry: Any = None) -> None:
        self.spec = spec
        self.table = table
        self.root = root
        self.options = source_options(spec)
        self.table_options: KafkaTableOptions = table_options(spec, table, self.options)
        self.topic = topic_of(table, self.table_options)
        self.group = group_of(spec, self.options)
        self.watch = BrokerWatch(describe(spec, self.options, self.topic), self.options.timeout)
        self._registry = registry
        self._consumer: Consumer | None = None
        self._resume: Resume | None = None
        self._assigned: set[Position] = set()
        self._revoked: set[Position] = set()
        self._next: dict[Position, int] = {}
        """The next offset to process of each owned position; absent: from the earliest."""
        self._broken = False
        self._incremental = incremental(self.options)
        self.joined = False
        """Whether the group gave this member an assignment yet (an empty one counts: the group
        has more members than the topic has partitions)."""
        session = self.options.options.get("session.timeout.ms", 45_000)
        self.join_timeout = float(str(session)) / 1000
        """How long the group may take to give it one: a rebalance waits up to the session
        timeout for a member that died to be declared dead."""

    def __repr__(self) -> str:
        return f"KafkaFeed({self.spec.file}, topic={self.topic})"

    # -- the Feed protocol ---------------------------------------------------------------------------

    def open(self, resume: Resume) -> None:
        consumer = connect(self.spec, self.options, self.root, self.group, self.watch)
        try:
            partitions(consumer, self.topic, self.watch)
            self._resume = resume
            consumer.subscribe(
                [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
        except BaseException:
            consumer.close()
            raise
        self._consumer = consumer

    def poll(self, max_messages: int, timeout: float) -> Delivery:
        consumer = self._require()
        if self._broken:
            raise RuntimeError(
                f"{self!r}: resume failed during a rebalance; close the feed and open it again"
            )
        delivery = Delivery()
        deadline = time.monotonic() + timeout
        try:
            messages = take(consumer, min(max_messages, _CHUNK), timeout)
            while messages:
                self._add(delivery, messages)
                left = min(_CHUNK, max_messages - len(delivery))
                wait = deadline - time.monotonic()
                if left <= 0 or wait <= 0:
                    break
                # Let the batch fill for up to ``timeout``: few large batches cost far less than
                # many small ones, and ``timeout`` bounds the latency this adds.
                messages = consumer.consume(num_messages=left, timeout=wait)
        except KafkaException as err:
            raise self.watch.failed(err.args[0]) from None
        arrived = bool(len(delivery))
        if arrived:
            self.watch.alive()
        self.watch.check(self._probe)
        return delivery

    def _add(self, delivery: Delivery, messages: list[Message]) -> None:
        """Append ``messages`` to ``delivery`` column by column, through C-level calls; the
        message objects go right after (a chunk at a time: they weigh more than their columns)."""
        if any(map(Message.error, messages)):  # rare: errors and partition ends ride along
            for error in filter(None, map(Message.error, messages)):
                self.watch.message_error(error)
            messages = [m for m in messages if m.error() is None]
        partitions: list[int] = list(map(Message.partition, messages))  # type: ignore[arg-type]
        owned = {p for t, p in self._assigned if t == self.topic}
        if not owned.issuperset(partitions):
            # librdkafka drops what a rebalance outdated; this is a second guard
            messages = [m for m, p in zip(messages, partitions, strict=True) if p in owned]
            partitions = list(map(Message.partition, messages))  # type: ignore[arg-type]
        delivery.values += map(Message.value, messages)
        delivery.keys += map(Message.key, messages)
        delivery.topics += [self.topic] * len(messages)
        delivery.partitions += partitions
        delivery.offsets += map(Message.offset, messages)  # type: ignore[arg-type]
        delivery.timestamps += _timestamps(messages)

    def take_revoked(self) -> set[Position]:
        revoked, self._revoked = self._revoked, set()
        return revoked

    def assigned(self) -> set[Position]:
        return set(self._assigned)

    def processed(self, offsets: Mapping[Position, int]) -> None:
        consumer = self._require()
        owned = {position: offset for position, offset in offsets.items() if position in self._assigned}
        for position, offset in owned.items():
            self._next[position] = offset + 1
        if not owned:
            return
        commits = [
            TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in owned.items()
        ]
        try:
            consumer.commit(offsets=commits, asynchronous=True)
        except KafkaException as err:  # advisory only: the lake holds the offsets that count
            log.warning("%s: committing offsets to group %s: %s", self.watch.where, self.group, err.args[0])

    def lag(self) -> dict[Position, int]:
        consumer = self._require()
        lag: dict[Position, int] = {}
        for position in sorted(self._assigned):
            marks = self._watermarks(consumer, TopicPartition(*position))
            if marks is None:
                continue
            low, high = marks
            lag[position] = max(high - self._next.get(position, max(low, 0)), 0)
        return lag

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close()  # leaves the group now, so the others take over without waiting
            except (KafkaException, RuntimeError) as err:
                log.warning("%s: closing the consumer: %s", self.watch.where, err)
            self._assigned.clear()

    # -- decoding --------------------------------------------------------------------------------------

    def deserializer(self) -> Deserializer | None:
        """The per-message decoder of a ``format: avro`` or ``protobuf`` table (None for the others)."""
        if self.table_options.format not in ("avro", "protobuf"):
            return None
        if self._registry is None:
            self._registry = schema_registry(self.spec, self.options, self.root)
        if self.table_options.format == "protobuf":
            from gristmill.connectors.kafka.protobuf import protobuf_deserializer  # slow to import

            return protobuf_deserializer(self._registry, self.watch.where)
        return avro_deserializer(self._registry, self.watch.where)

    # -- rebalancing -----------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Ask the lake where each new partition stands and start right after it. Runs inside
        poll(), after every former owner has given the partition up."""
        positions = [(tp.topic, tp.partition) for tp in assigned]
        self.joined = True
        assert self._resume is not None
        try:
            done = self._resume(positions) if positions else {}
        except BaseException:
            # confluent-kafka then assigns the partitions at the group's committed offsets, which
            # are not the lake's: this consumer must never deliver again.
            self._broken = True
            raise
        for tp, position in zip(assigned, positions, strict=True):
            last = done.get(position)
            tp.offset = OFFSET_BEGINNING if last is None else last + 1
            if last is None:
                self._next.pop(position, None)
            else:
                self._next[position] = last + 1
        if self._incremental:
            consumer.incremental_assign(assigned)
            self._assigned |= set(positions)
        else:
            consumer.assign(assigned)
            self._assigned = set(positions)

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        positions = {(tp.topic, tp.partition) for tp in revoked}
        self._revoked |= positions
        self._assigned -= positions
        if not self._assigned:
            self.joined = False  # a rebalance: the member rejoins, and waits for the group again
        for position in positions:
            self._next.pop(position, None)
        # confluent-kafka unassigns them itself once this returns

    # -- helpers ---------------------------------------------------------------------------------------

    def _require(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._consumer

    def _probe(self) -> bool:
        return reachable(self._require(), self.topic, self.watch)

    def _watermarks(self, consumer: Consumer, tp: TopicPartition) -> tuple[int, int] | None:
        """(low, high) of a partition: the figures the last fetch brought back, else one
        ListOffsets request with a short timeout; None when the brokers cannot say."""
        marks = consumer.get_watermark_offsets(tp, cached=True)
        if marks is not None and marks[1] >= 0:
            return int(marks[0]), int(marks[1])
        try:
            marks = consumer.get_watermark_offsets(tp, timeout=min(self.watch.timeout, 2.0), cached=False)
        except KafkaException:
            return None
        return None if marks is None else (int(marks[0]), int(marks[1]))
