"""Confluent-framed Protobuf values (magic byte, schema id, message indexes, body) to records,
through the source's Schema Registry.

confluent-kafka's ``ProtobufDeserializer`` parses with a generated message class, which a
project does not have: the class is built here from the writer's schema as the registry holds it,
once per schema id and message, and the library's deserializer does the rest (framing, rules).
Imported only by ``format: protobuf`` tables: the registry's Protobuf support is slow to load."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import dual_schema_id_deserializer
from confluent_kafka.schema_registry.common.protobuf import PROTOBUF_TYPE, protobuf_to_decimal
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.schema_registry.serde import SchemaId
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from gristmill.connectors.kafka.registry import registry_failures
from gristmill.connectors.streams.decode import Deserializer

WRAPPERS = {
    f"google.protobuf.{kind}Value"
    for kind in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
"""Messages that only box a scalar so that it can be unset: they land as that scalar."""

VALUES: dict[str, Callable[[Any], Any]] = {
    "google.protobuf.Timestamp": lambda value: value.ToDatetime(tzinfo=datetime.UTC),
    "google.type.Date": lambda value: datetime.date(value.year, value.month, value.day),
    "confluent.type.Decimal": protobuf_to_decimal,
    **{name: lambda value: value.value for name in WRAPPERS},
}
"""Messages that stand for one value, as the Python value the declared column types take."""


def protobuf_deserializer(registry: Any, where: str) -> Deserializer:
    """Confluent-framed Protobuf values to records of Python values (int64 as int, Timestamp as
    datetime, enums by name, unset optional fields as None), as Avro records come.

    A registry that cannot be reached or refuses the credentials raises a ``SourceError``: that
    is no fault of the message, which must not be set aside as undecodable for it."""
    readers = _Readers(registry)

    def deserialize(value: bytes, topic: str) -> dict[str, Any]:
        context = SerializationContext(topic, MessageField.VALUE)
        with registry_failures(where):
            message = readers.of(value, context)(value, context)
        return _record(message)

    return deserialize


class _Readers:
    """A ``ProtobufDeserializer`` per writer's message (schema id and message-index path), each
    parsing with a class built from that writer's schema."""

    def __init__(self, registry: Any) -> None:
        # The library's own schema handling (fetching, parsing, finding a message by its index
        # path) lives on a deserializer; this one is never given a message to parse.
        self.schemas = ProtobufDeserializer(empty_pb2.Empty, None, registry)
        self.registry = registry
        self.by_writer: dict[tuple[Any, ...], ProtobufDeserializer] = {}

    def of(self, value: bytes, context: SerializationContext) -> ProtobufDeserializer:
        writer = SchemaId(PROTOBUF_TYPE)
        dual_schema_id_deserializer(value, context, writer)  # reads the frame only
        key = (writer.id, writer.guid, tuple(writer.message_indexes or ()))
        if key not in self.by_writer:
            self.by_writer[key] = ProtobufDeserializer(self._message_class(writer), None, self.registry)
        return self.by_writer[key]

    def _message_class(self, writer: SchemaId) -> type[Message]:
        schema = self.schemas._get_writer_schema(writer, None, fmt="serialized")
        file_proto, pool = self.schemas._get_parsed_schema(schema)
        file = pool.FindFileByName(file_proto.name)
        descriptor = self.schemas._get_message_desc(pool, file, writer.message_indexes or [0])
        message_class: type[Message] = GetMessageClass(descriptor)
        return message_class


def _record(message: Message) -> dict[str, Any]:
    return {field.name: _field(message, field) for field in message.DESCRIPTOR.fields}


def _field(message: Message, field: FieldDescriptor) -> Any:
    value = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        return {key: _value(entry.fields_by_name["value"], item) for key, item in value.items()}
    if field.is_repeated:
        return [_value(field, item) for item in value]
    if field.has_presence and not message.HasField(field.name):
        return None
    return _value(field, value)


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value  # proto3 enums are open
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    single = VALUES.get(field.message_type.full_name)
    return single(value) if single is not None else _record(value)
