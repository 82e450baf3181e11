"""``format: protobuf`` Kafka tables against librdkafka's mock cluster and confluent-kafka's
in-process Schema Registry (``mock://``): messages framed by confluent-kafka's own serializer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.common.protobuf import set_decimal_message
from confluent_kafka.schema_registry.confluent.type import decimal_pb2
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2, wrappers_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import Message
from google.type import date_pb2

from gristmill.connectors.kafka.config import KafkaTableOptions
from gristmill.connectors.kafka.protobuf import protobuf_deserializer
from gristmill.connectors.kafka.source import Source
from gristmill.connectors.streams.decode import decode
from gristmill.connectors.streams.feed import Delivery
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.workspace import Workspace
from tests.conftest import Cli
from tests.support.kafka_broker import MockKafka
from tests.unit.connectors import test_kafka as kafka_tests
from tests.unit.connectors.test_kafka import FAST_GROUP, _extend, _poll_until, _produce, _unique

kafka_broker = kafka_tests.kafka_broker  # the session's mock cluster, as a fixture of this module
kafka_source = kafka_tests.kafka_source

COLUMNS = "{user_id: bigint, name: string, amount: double, event_time: timestamp}"
BIG = 2**53 + 1
"""An int64 a double cannot hold: it must land exact, not through JSON's number or string."""
AT = datetime(2024, 5, 1, 10, 0, 0, 123456)


def _source_file(bootstrap: str, topic: str, *, registry: str = 'url: "mock://protobuf"') -> str:
    top = f"schema_registry: {{{registry}}}\n" if registry else ""
    return (
        f"kind: kafka\nbrokers: {bootstrap}\ngroup: {_unique('g')}\ntimeout: 5\n{top}"
        f"options:\n{FAST_GROUP}"
        f"tables:\n  events:\n    topic: {topic}\n    format: protobuf\n    columns: {COLUMNS}\n"
    )


def _event_class() -> type[Message]:
    """``shop.Event`` of this file, as protoc would generate it (built from its descriptor, which is
    all the serializer needs)::

        syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        message Other { string note = 1; }
        message Event {
          int64 user_id = 1;
          string name = 2;
          double amount = 3;
          google.protobuf.Timestamp event_time = 4;
        }

    ``Other`` comes first so that the frame's message index (1) is what picks ``Event``."""
    field = FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="shop/events.proto",
        package="shop",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    file.message_type.add(name="Other").field.add(name="note", number=1, type=field.TYPE_STRING)
    event = file.message_type.add(name="Event")
    event.field.add(name="user_id", number=1, type=field.TYPE_INT64)
    event.field.add(name="name", number=2, type=field.TYPE_STRING)
    event.field.add(name="amount", number=3, type=field.TYPE_DOUBLE)
    event.field.add(
        name="event_time", number=4, type=field.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    event_class: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Event"))
    return event_class


def _events(source: Source, topic: str, ids: range) -> list[bytes]:
    """Confluent-framed ``shop.Event`` values, their schema registered in the source's registry."""
    return _frame(source.schema_registry(), topic, ids)


def _frame(registry: Any, topic: str, ids: range) -> list[bytes]:
    event_class = _event_class()
    serialize = ProtobufSerializer(event_class, registry)
    context = SerializationContext(topic, MessageField.VALUE)
    values = []
    for i in ids:
        event = event_class(user_id=BIG + i, name=f"user {i}", amount=i * 1.5)
        event.event_time.FromDatetime(AT.replace(tzinfo=UTC, minute=i))
        values.append(serialize(event, context))
    return values


def test_protobuf_through_a_schema_registry_round_trips(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("protobuf")
    kafka_broker.create_topic(topic, 2)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    values = _events(source, topic, range(6))
    assert values[0][:7] == b"\x00\x00\x00\x00\x01\x02\x02"  # magic byte, schema id 1, indexes [1]
    _produce(kafka_broker.bootstrap, topic, values[:3], partition=0)
    _produce(kafka_broker.bootstrap, topic, values[3:], partition=1)

    table = source.spec.tables["events"]
    landed = source.read(table).read_all().sort_by("user_id")
    assert landed.schema == source.schema(table)
    assert landed.schema.field("user_id").type == pa.int64()
    assert landed.schema.field("event_time").type == pa.timestamp("us")
    assert landed["user_id"].to_pylist() == [BIG + i for i in range(6)]
    assert landed["name"].to_pylist() == [f"user {i}" for i in range(6)]
    assert landed["amount"].to_pylist() == [i * 1.5 for i in range(6)]
    assert landed["event_time"].to_pylist() == [AT.replace(minute=i) for i in range(6)]


def test_bad_protobuf_messages_are_rejected_with_reasons(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("protobuf_bad")
    kafka_broker.create_topic(topic)
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    good = _events(source, topic, range(2))
    values: list[bytes | None] = [
        good[0],
        b"not protobuf",  # no magic byte
        b"\x00\x00\x00\x03\xe7" + good[0][5:],  # schema id 999: the registry does not know it
        good[0][:7] + b"\xff\xff\xff",  # the right frame, a body that is not protobuf
        None,
        good[1],
    ]
    _produce(kafka_broker.bootstrap, topic, values)
    table = source.spec.tables["events"]

    with pytest.raises(SourceError) as caught:
        source.read(table).read_all()
    assert "4 message(s) could not be decoded as protobuf; the first, partition 0 offset 1: " in str(
        caught.value
    )
    assert "cannot be read as Protobuf" in str(caught.value)

    feed = source.feed(table)
    got = Delivery()
    feed.open(lambda positions: {})
    try:
        _poll_until([feed], lambda: len(got) >= len(values), lambda _, d: _extend(got, d))
        rows, rejected = decode(got, feed.table_options, feed.deserializer())
    finally:
        feed.close()
    assert rows["user_id"].to_pylist() == [BIG, BIG + 1]
    assert rows["_gm_offset"].to_pylist() == [0, 5]
    reasons = dict(zip(rejected["offset"].to_pylist(), rejected["reason"].to_pylist(), strict=True))
    assert sorted(reasons) == [1, 2, 3, 4]
    read_as = "cannot be read as Protobuf with the declared columns: "
    assert reasons[1] == read_as + "Invalid magic byte"
    assert reasons[2].startswith(read_as + "Schema Not Found")
    assert reasons[3].startswith(read_as + "Error parsing message")
    assert reasons[4] == "empty message (no value)"
    assert rejected["value"].to_pylist()[0] == b"not protobuf"


def test_an_unreachable_registry_fails_the_read_not_the_messages(
    kafka_broker: MockKafka, kafka_source: Callable[..., Source]
) -> None:
    topic = _unique("protobuf_down")
    kafka_broker.create_topic(topic)
    framer = kafka_source(_source_file(kafka_broker.bootstrap, topic))
    _produce(kafka_broker.bootstrap, topic, _events(framer, topic, range(2)))
    secret = "s3cr3t-registry-password"
    registry = f'url: "http://127.0.0.1:1", basic.auth.user.info: "gristmill:{secret}", max.retries: 0'
    source = kafka_source(_source_file(kafka_broker.bootstrap, topic, registry=registry))
    with pytest.raises(TransientSourceError) as caught:
        source.read(source.spec.tables["events"]).read_all()
    assert "the schema registry did not answer" in str(caught.value)
    assert f'Kafka topic "{topic}"' in str(caught.value)
    assert secret not in str(caught.value)


def test_well_known_types_land_as_their_values() -> None:
    """Decimal, Date, wrappers and enums, through ``decode`` with the declared column types; an
    unset optional field lands as NULL."""
    field = FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="pay.proto",
        package="pay",
        syntax="proto3",
        dependency=[
            "confluent/type/decimal.proto",
            "google/type/date.proto",
            "google/protobuf/wrappers.proto",
        ],
    )
    payment = file.message_type.add(name="Payment")
    payment.field.add(name="amount", number=1, type=field.TYPE_MESSAGE, type_name=".confluent.type.Decimal")
    payment.field.add(name="day", number=2, type=field.TYPE_MESSAGE, type_name=".google.type.Date")
    payment.field.add(
        name="retries", number=3, type=field.TYPE_MESSAGE, type_name=".google.protobuf.Int64Value"
    )
    payment.field.add(name="state", number=4, type=field.TYPE_ENUM, type_name=".pay.Payment.State")
    states = payment.enum_type.add(name="State")
    states.value.add(name="PENDING", number=0)
    states.value.add(name="PAID", number=1)
    pool = descriptor_pool.DescriptorPool()
    for module in (decimal_pb2, date_pb2, wrappers_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    payment_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("pay.Payment"))
    paid = payment_class(state=1)
    set_decimal_message(paid.amount, Decimal("12.34"))
    paid.day.year, paid.day.month, paid.day.day = 2024, 5, 1
    paid.retries.value = 2
    registry = SchemaRegistryClient.new_client({"url": "mock://payments"})
    serialize = ProtobufSerializer(payment_class, registry)
    context = SerializationContext("payments", MessageField.VALUE)
    delivery = Delivery()
    for offset, message in enumerate((paid, payment_class())):
        delivery.add(serialize(message, context), None, "payments", 0, offset, None)
    options = KafkaTableOptions(
        format="protobuf",
        columns={"amount": "decimal(12,2)", "day": "date", "retries": "bigint", "state": "string"},
    )

    rows, rejected = decode(delivery, options, protobuf_deserializer(registry, "payments"))
    assert rejected.num_rows == 0
    assert rows.select(["amount", "day", "retries", "state"]).to_pylist() == [
        {"amount": Decimal("12.34"), "day": date(2024, 5, 1), "retries": 2, "state": "PAID"},
        {"amount": None, "day": None, "retries": None, "state": "PENDING"},
    ]


def test_protobuf_needs_a_schema_registry(kafka_source: Callable[..., Source]) -> None:
    with pytest.raises(ConfigError) as caught:
        kafka_source(_source_file("127.0.0.1:1", "t", registry=""))
    assert str(caught.value).startswith(
        "sources/events.yml:11: format: protobuf needs the source's schema_registry"
    )
    assert caught.value.hint == "add schema_registry: {url: https://...} at the top of sources/events.yml"


def test_a_stream_lands_protobuf_and_dead_letters_the_rest(
    kafka_broker: MockKafka,
    make_project: Callable[..., Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = _unique("protobuf_stream")
    kafka_broker.create_topic(topic)
    registry = SchemaRegistryClient.new_client({"url": "mock://protobuf"})
    # A mock registry lives in its client: the run must see the one the events were framed with.
    monkeypatch.setattr(SchemaRegistryClient, "new_client", staticmethod(lambda conf: registry))
    root = make_project(
        {
            "sources/shop.yml": _source_file(kafka_broker.bootstrap, topic),
            "models/marts/events.sql": "-- kind: stream\nselect user_id, event_time from raw.shop__events\n",
        }
    )
    good = _frame(registry, topic, range(3))
    _produce(kafka_broker.bootstrap, topic, [good[0], b"not protobuf", *good[1:]])

    code, out = cli("stream", "marts.events", "--stop-when-idle", "2", "--max-wait", "0.2", project=root)
    assert code == 0, out
    assert "1 rejected" in out
    workspace = Workspace(root)
    landed = workspace.query("select user_id, event_time from marts.events order by user_id").to_pylist()
    assert landed == [{"user_id": BIG + i, "event_time": AT.replace(minute=i)} for i in range(3)]
    rejected = workspace.query('select "offset", reason, value from _gristmill.stream_rejected').to_pylist()
    assert rejected == [
        {
            "offset": 1,
            "reason": "cannot be read as Protobuf with the declared columns: Invalid magic byte",
            "value": b"not protobuf",
        }
    ]
