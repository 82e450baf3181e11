"""The Kafka source and feed against librdkafka's mock cluster (tests/streaming/kafka_broker.py):
the real protocol, consumer groups and offsets; nothing of ours is mocked."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path

import pytest
from confluent_kafka import Producer

from gristmill.connectors import open_source
from gristmill.connectors.kafka import feed as kafka_feed
from gristmill.connectors.kafka.feed import KafkaFeed
from gristmill.connectors.kafka.source import Source
from gristmill.connectors.streams.decode import decode
from gristmill.connectors.streams.feed import Delivery, Position
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project import load_project
from tests.support import kafka_broker as broker_fixtures
from tests.support.kafka_broker import MockKafka, running_broker

kafka_broker = broker_fixtures.kafka_broker  # the session's mock cluster, as a fixture of this module

COLUMNS = "{user_id: bigint, amount: double}"
FAST_GROUP = "  session.timeout.ms: 2000\n  heartbeat.interval.ms: 100\n"
"""The mock cluster waits session.timeout.ms - 1 s for members to rejoin on every rebalance, and
members learn of one from a heartbeat: short ones keep group tests to a few seconds."""
_names = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def _produce(bootstrap: str, topic: str, values: Iterable[bytes | None], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(10) == 0


def _events(start: int, count: int) -> list[bytes | None]:
    return [
        json.dumps({"user_id": i, "amount": i / 2, "extra": "x"}).encode()
        for i in range(start, start + count)
    ]


def _source_file(bootstrap: str, topic: str, *, table: str = "", top: str = "", options: str = "") -> str:
    return (
        f"kind: kafka\nbrokers: {bootstrap}\ngroup: {_unique('g')}\ntimeout: 5\n{top}"
        f"options:\n{FAST_GROUP}{options}"
        f"tables:\n  events:\n    topic: {topic}\n    columns: {COLUMNS}\n{table}"
    )


@pytest.fixture
def kafka_source(make_project: Callable[..., Path]) -> Callable[..., Source]:
    """A kind: kafka source from the text of sources/events.yml."""

    def make(text: str) -> Source:
        root = make_project({"sources/events.yml": text})
        source = open_source(load_project(root).sources["events"], root)
        assert isinstance(source, Source)
        return source

    return make


def _resume_from(lake: dict[Position, int]) -> Callable[[list[Position]], dict[Position, int]]:
    return lambda positions: {p: lake[p] for p in positions if p in lake}


def _two_partitions(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source], name: str, count: int
) -> tuple[str, KafkaFeed]:
    """A new two-partition topic holding users 0.. in partition 0 and 100.. in partition 1,
    ``count`` each, and a feed of it (not opened)."""
    topic = _unique(name)
    kafka_broker.create_topic(topic, 2)
    _produce(kafka_broker.bootstrap, topic, _events(0, count), partition=0)
    _produce(kafka_broker.bootstrap, topic, _events(100, count), partition=1)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    feed = source.feed(source.spec.tables["events"])
    assert isinstance(feed, KafkaFeed)
    return topic, feed


def _poll_until(
    feeds: list[KafkaFeed], done: Callable[[], bool], step: Callable[[KafkaFeed, Delivery], None]
) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the mock cluster"
        for feed in feeds:
            step(feed, feed.poll(100, 0.05))


# -- configuration ----------------------------------------------------------------------------------


def test_unknown_options_name_the_file_and_line(kafka_source: Callable[..., Source]) -> None:
    with pytest.raises(ConfigError) as caught:
        kafka_source(_source_file("127.0.0.1:1", "t", top="brokres: x\n"))
    assert str(caught.value).startswith('sources/events.yml:5: unknown option "brokres"')
    with pytest.raises(ConfigError) as caught:
        kafka_source(_source_file("127.0.0.1:1", "t", table="    topik: t\n"))
    assert str(caught.value).startswith('sources/events.yml:12: unknown option "topik"')
    assert caught.value.hint == 'did you mean "topic"?'
    with pytest.raises(ConfigError, match=r'"group.id" is set by gristmill: write it as group:'):
        kafka_source(_source_file("127.0.0.1:1", "t").replace("options:\n", "options:\n  group.id: x\n"))
    with pytest.raises(ConfigError, match="format: avro needs the source's schema_registry"):
        kafka_source(_source_file("127.0.0.1:1", "t", table="    format: avro\n"))
    with pytest.raises(ConfigError, match="format: json needs columns:") as caught:
        kafka_source(_source_file("127.0.0.1:1", "t").replace(f"    columns: {COLUMNS}\n", ""))
    assert str(caught.value).startswith("sources/events.yml:9:")


def test_librdkafka_setting_errors_hide_secrets(
    kafka_source: Callable[..., Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", "hunter2-very-secret")
    text = _source_file("127.0.0.1:1", "t").replace(
        "options:\n", "options:\n  security.protocol: ${env:KAFKA_PASSWORD}\n"
    )
    source = kafka_source(text)
    with pytest.raises(ConfigError) as caught:
        source.read(source.spec.tables["events"])
    message = str(caught.value)
    assert message.startswith("sources/events.yml:5: options:")
    assert "hunter2" not in message and "***" in message
    misspelt = kafka_source(text.replace("security.protocol", "sasl.pasword"))
    with pytest.raises(ConfigError, match=r'No such configuration property: "sasl.pasword"'):
        misspelt.feed(misspelt.spec.tables["events"]).open(lambda positions: {})


def test_unreachable_brokers_fail_fast_and_clearly(kafka_source: Callable[..., Source]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        source = kafka_source(
            _source_file(f"127.0.0.1:{port}", "events").replace("timeout: 5", "timeout: 1.5")
        )
        table = source.spec.tables["events"]
        started = time.monotonic()
        with pytest.raises(TransientSourceError) as caught:
            source.read(table)
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert (
            f'sources/events.yml: Kafka topic "events" on 127.0.0.1:{port}: no broker answered within 1.5 s'
            in message
        )
        assert "Connection refused" in message and "Traceback" not in message
        assert "check brokers:" in str(caught.value.hint)
        feed = source.feed(table)
        started = time.monotonic()
        with pytest.raises(SourceError, match="no broker answered"):
            feed.open(lambda positions: {})
        assert time.monotonic() - started < 5


def test_feed_fails_once_the_brokers_stay_down(kafka_source: Callable[..., Source]) -> None:
    with running_broker() as broker:  # a cluster of its own, to stop
        broker.create_topic("gone")
        _produce(broker.bootstrap, "gone", _events(0, 3))
        source = kafka_source(_source_file(broker.bootstrap, "gone").replace("timeout: 5", "timeout: 1.5"))
        feed = source.feed(source.spec.tables["events"])
        got = Delivery()
        feed.open(lambda positions: {})
        try:
            _poll_until([feed], lambda: len(got) >= 3, lambda _, d: _extend(got, d))
            broker.stop()
            started = time.monotonic()
            with pytest.raises(TransientSourceError, match=r"no broker answered within 1\.5 s"):
                while time.monotonic() - started < 20:
                    feed.poll(10, 0.2)
            assert time.monotonic() - started < 10
        finally:
            feed.close()


def test_missing_topic_suggests_the_near_one(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("orders")
    kafka_broker.create_topic(topic)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic + "x"))
    with pytest.raises(SourceError, match="no such topic") as caught:
        source.read(source.spec.tables["events"])
    assert caught.value.hint == f'did you mean "{topic}"?'


# -- the feed -----------------------------------------------------------------------------------------


def test_feed_resumes_right_after_the_lake_and_decodes(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic, feed = _two_partitions(kafka_broker, kafka_source, "events", 10)
    asked: list[list[Position]] = []

    def resume(positions: list[Position]) -> dict[Position, int]:
        asked.append(sorted(positions))
        return {(topic, 0): 6}

    got = Delivery()
    feed.open(resume)
    try:
        _poll_until([feed], lambda: len(got) >= 13, lambda _, d: _extend(got, d))
        assert feed.assigned() == {(topic, 0), (topic, 1)}
        assert asked == [[(topic, 0), (topic, 1)]]
        rows, rejected = decode(got, feed.table_options)
    finally:
        feed.close()
    assert rejected.num_rows == 0
    assert rows.schema == feed.table_options.landed_schema()
    by_partition = {
        p: sorted(
            o
            for q, o in zip(rows["_gm_partition"].to_pylist(), rows["_gm_offset"].to_pylist(), strict=True)
            if q == p
        )
        for p in (0, 1)
    }
    assert by_partition == {0: [7, 8, 9], 1: list(range(10))}
    assert sorted(rows["user_id"].to_pylist()) == [7, 8, 9, *range(100, 110)]
    assert rows["_gm_topic"].unique().to_pylist() == [topic]
    assert all(ts is not None for ts in rows["_gm_timestamp"].to_pylist())


def _extend(into: Delivery, delivery: Delivery) -> None:
    for column in fields(Delivery):
        getattr(into, column.name).extend(getattr(delivery, column.name))


def test_one_batch_gathers_several_chunks_in_order(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch larger than the chunk the feed takes from librdkafka at a time comes whole: every
    message once, each partition's offsets in order, each with its own key and timestamp."""
    monkeypatch.setattr(kafka_feed, "_CHUNK", 7)
    topic, feed = _two_partitions(kafka_broker, kafka_source, "chunks", 30)
    got = Delivery()
    sizes: list[int] = []
    feed.open(_resume_from({}))
    try:
        deadline = time.monotonic() + 30
        while len(got) < 60:
            assert time.monotonic() < deadline, "timed out waiting for the mock cluster"
            delivery = feed.poll(1000, 1.0)
            sizes.append(len(delivery))
            _extend(got, delivery)
    finally:
        feed.close()
    assert max(sizes) > 7  # a batch was more than one chunk
    for partition, first in ((0, 0), (1, 100)):
        mine = [i for i, p in enumerate(got.partitions) if p == partition]
        assert [got.offsets[i] for i in mine] == list(range(30))
        assert [json.loads(got.values[i] or b"")["user_id"] for i in mine] == list(range(first, first + 30))
    assert got.last_offsets() == {(topic, 0): 29, (topic, 1): 29}
    assert got.first_offsets() == {(topic, 0): 0, (topic, 1): 0}
    assert all(t is not None for t in got.timestamps)


def test_bad_messages_come_back_rejected_with_reasons(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("bad")
    kafka_broker.create_topic(topic)
    values: list[bytes | None] = [
        b'{"user_id": 1, "amount": 2.5}',
        b"not json at all",
        b'{"user_id": "one", "amount": 1}',
        None,
        b"[1, 2]",
        b'{"user_id": 2, "amount": 3}',
    ]
    _produce(kafka_broker.bootstrap, topic, values)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    feed = source.feed(source.spec.tables["events"])
    got = Delivery()
    feed.open(lambda positions: {})
    try:
        _poll_until([feed], lambda: len(got) >= len(values), lambda _, d: _extend(got, d))
    finally:
        feed.close()
    rows, rejected = decode(got, feed.table_options)
    assert rows["user_id"].to_pylist() == [1, 2]
    reasons = dict(zip(rejected["offset"].to_pylist(), rejected["reason"].to_pylist(), strict=True))
    assert sorted(reasons) == [1, 2, 3, 4]
    assert reasons[1].startswith("not JSON")
    assert reasons[2].startswith("does not match the declared columns")
    assert reasons[3] == "empty message (no value)"
    assert reasons[4] == "a JSON list, not an object"
    assert rejected["value"].to_pylist()[0] == b"not json at all"


def test_lag_falls_to_zero_as_offsets_are_processed(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("lag")
    kafka_broker.create_topic(topic, 2)
    for partition in (0, 1):
        _produce(kafka_broker.bootstrap, topic, _events(0, 10), partition=partition)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    feed = source.feed(source.spec.tables["events"])
    got = Delivery()
    feed.open(_resume_from({(topic, 1): 3}))
    try:
        _poll_until([feed], lambda: len(got) >= 16, lambda _, d: _extend(got, d))
        assert feed.lag() == {(topic, 0): 10, (topic, 1): 6}  # consumed is not processed
        feed.processed({(topic, 0): 4})
        assert feed.lag() == {(topic, 0): 5, (topic, 1): 6}
        feed.processed(got.last_offsets())
        assert feed.lag() == {(topic, 0): 0, (topic, 1): 0}
    finally:
        feed.close()


@pytest.mark.parametrize(
    "options",
    ["", "  partition.assignment.strategy: range\n", "  group.protocol: consumer\n"],
    ids=["cooperative-sticky", "range", "kip-848"],
)
def test_group_members_split_partitions_and_hand_them_over_exactly_once(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source], options: str
) -> None:
    """cooperative-sticky (the default) and the KIP-848 protocol hand over increments; range
    revokes and reassigns everything."""
    topic = _unique("shared")
    kafka_broker.create_topic(topic, 4)
    text = _source_file(kafka_broker.bootstrap, topic, options=options)
    if "group.protocol" in options:  # its timings are the broker's: no session settings
        text = text.replace(FAST_GROUP, "")
    source = kafka_source(text)
    table = source.spec.tables["events"]
    lake: dict[Position, int] = {}
    landed: list[tuple[int, int]] = []
    revoked: dict[KafkaFeed, set[Position]] = {}

    def produce(start: int) -> None:
        for partition in range(4):
            _produce(kafka_broker.bootstrap, topic, _events(start, 10), partition=partition)

    def step(feed: KafkaFeed, delivery: Delivery) -> None:
        """What the streaming loop does: land, commit the lake, then tell the broker."""
        revoked.setdefault(feed, set()).update(feed.take_revoked())
        landed.extend(zip(delivery.partitions, delivery.offsets, strict=True))
        lake.update(delivery.last_offsets())
        feed.processed(delivery.last_offsets())

    def split(*members: KafkaFeed) -> Callable[[], bool]:
        def done() -> bool:
            owned = [m.assigned() for m in members]
            return all(owned) and sum(map(len, owned)) == 4 and len(set().union(*owned)) == 4

        return done

    a, b, c = (source.feed(table) for _ in range(3))
    produce(0)
    try:
        a.open(_resume_from(lake))
        b.open(_resume_from(lake))
        _poll_until([a, b], split(a, b), step)
        assert len(a.assigned()) == len(b.assigned()) == 2
        produce(10)
        revoked.clear()
        before = {"a": a.assigned(), "b": b.assigned()}
        c.open(_resume_from(lake))
        _poll_until([a, b, c], split(a, b, c), step)
        # Every partition that left a member was reported by it (the mock's sticky assignor may
        # shuffle more than the one C needs: extra reports are allowed, missing ones are not).
        assert before["a"] - a.assigned() <= revoked[a]
        assert before["b"] - b.assigned() <= revoked[b]
        assert c.assigned() <= revoked[a] | revoked[b]
        produce(20)
        c.close()  # leaves the group: A and B share all four again
        _poll_until([a, b], split(a, b), step)
        produce(30)
        _poll_until([a, b], lambda: len(landed) >= 160, step)
        for feed in (a, b):
            step(feed, feed.poll(100, 0.3))
    finally:
        for feed in (a, b, c):
            feed.close()
    assert sorted(landed) == [(p, o) for p in range(4) for o in range(40)]  # none lost, none twice


# -- the batch source ----------------------------------------------------------------------------------


def test_read_lands_every_partition_up_to_the_end(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("batch")
    kafka_broker.create_topic(topic, 3)
    for partition in range(3):
        _produce(kafka_broker.bootstrap, topic, _events(partition * 100, 20), partition=partition)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    table = source.spec.tables["events"]
    assert source.schema(table) == source.tables["events"].landed_schema()
    reader = source.read(table)
    _produce(kafka_broker.bootstrap, topic, _events(999, 5), partition=0)  # after the ends were measured
    landed = reader.read_all()
    assert landed.schema == source.schema(table)
    assert landed.num_rows == 60
    assert sorted(landed["user_id"].to_pylist()) == [*range(20), *range(100, 120), *range(200, 220)]
    assert landed["amount"].to_pylist()[0] == landed["user_id"].to_pylist()[0] / 2
    assert source.change_marker(table) is None
    assert source.read(table).read_all().num_rows == 65  # the next run sees the later ones


def test_read_steps_over_transaction_markers_and_lists_land_raw_bytes(
    kafka_broker: MockKafka, make_project: Callable[..., Path]
) -> None:
    """A committed transaction ends with a marker no consumer sees: the read must still finish."""
    topic = _unique("txn")
    kafka_broker.create_topic(topic)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": _unique("tx")})
    producer.init_transactions(10)
    producer.begin_transaction()
    for value in _events(0, 5):
        producer.produce(topic, value)
    producer.commit_transaction(10)
    text = f"kind: kafka\nbrokers: {kafka_broker.bootstrap}\ntimeout: 3\ntables: [{topic}]\n"
    root = make_project({"sources/events.yml": text})
    source = open_source(load_project(root).sources["events"], root)
    table = next(iter(source.spec.tables.values()))
    started = time.monotonic()
    landed = source.read(table).read_all()
    assert time.monotonic() - started < 3
    assert landed.column_names[0] == "value"  # a list of topics lands each message's bytes
    assert landed["value"].to_pylist() == _events(0, 5)
    assert landed["_gm_offset"].to_pylist() == [0, 1, 2, 3, 4]


def test_read_refuses_to_drop_undecodable_messages(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("dirty")
    kafka_broker.create_topic(topic)
    _produce(kafka_broker.bootstrap, topic, [*_events(0, 3), b"{oops", *_events(3, 2), b"", b"[]"])
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    with pytest.raises(SourceError) as caught:
        source.read(source.spec.tables["events"]).read_all()
    message = str(caught.value)
    assert f'Kafka topic "{topic}"' in message
    assert "3 message(s) could not be decoded as json; the first, partition 0 offset 3: not JSON" in message
    assert "dead-letter" in str(caught.value.hint)


def test_avro_through_a_schema_registry_round_trips(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = _unique("avro")
    kafka_broker.create_topic(topic, 2)
    text = _source_file(
        kafka_broker.bootstrap,
        topic,
        top='schema_registry: {url: "mock://test"}\n',
        table="    format: avro\n",
    )
    source = kafka_source(text)
    table = source.spec.tables["events"]
    schema = json.dumps(
        {
            "type": "record",
            "name": "Event",
            "fields": [{"name": "user_id", "type": "long"}, {"name": "amount", "type": "double"}],
        }
    )
    serialize = AvroSerializer(source.schema_registry(), schema)
    context = SerializationContext(topic, MessageField.VALUE)
    values = [serialize({"user_id": i, "amount": i * 1.5}, context) for i in range(6)]
    _produce(kafka_broker.bootstrap, topic, [*values[:3], b"not avro"], partition=0)
    _produce(kafka_broker.bootstrap, topic, values[3:], partition=1)

    with pytest.raises(SourceError, match="1 message\\(s\\) could not be decoded as avro"):
        source.read(table).read_all()

    feed = source.feed(table)
    got = Delivery()
    feed.open(lambda positions: {})
    try:
        _poll_until([feed], lambda: len(got) >= 7, lambda _, d: _extend(got, d))
        rows, rejected = decode(got, feed.table_options, feed.deserializer())
    finally:
        feed.close()
    assert sorted(rows["user_id"].to_pylist()) == list(range(6))
    assert sorted(rows["amount"].to_pylist()) == [i * 1.5 for i in range(6)]
    assert rejected["offset"].to_pylist() == [3]
    assert rows.schema == source.schema(table)
