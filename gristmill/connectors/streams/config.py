"""Options every message-broker table shares: how its payload is written and which columns it
lands. Each broker kind adds its own (topic, subject, ...) on top."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import field_validator, model_validator
from pydantic_core import PydanticCustomError

from gristmill._util.naming import snake_case
from gristmill.connectors.base import Options
from gristmill.connectors.rest.config import arrow_type

Format = Literal["json", "avro", "protobuf", "raw"]

METADATA = (
    ("_gm_topic", pa.string()),
    ("_gm_partition", pa.int32()),
    ("_gm_offset", pa.int64()),
    ("_gm_timestamp", pa.timestamp("ms", tz="UTC")),
    ("_gm_key", pa.binary()),
)
"""Columns every landed message carries after its payload: where it came from and when."""

REJECTED = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("reason", pa.string()),
    ]
)
"""A message that could not be decoded: the raw bytes and why, nothing dropped silently."""


class StreamTableOptions(Options):
    format: Format = "json"
    """json: one JSON object per message; avro, protobuf: Confluent-framed Avro or Protobuf (need
    ``schema_registry`` on the source; fields are read by their names in the writer's schema);
    raw: the bytes as a ``value`` BLOB column."""
    columns: dict[str, str] = {}
    """Payload fields to land and their types (string, bigint, double, boolean, date, timestamp,
    timestamptz, decimal(p,s)); needed for json; fields not listed are ignored."""

    @field_validator("columns")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for spelled in value.values():
            arrow_type(str(spelled))
        return value

    @model_validator(mode="after")
    def _json_needs_columns(self) -> StreamTableOptions:
        if self.format == "json" and not self.columns:
            raise ValueError(
                "format: json needs columns: the fields to land and their types, e.g. "
                "{user_id: bigint, amount: double, event_time: timestamp} (or format: raw for the bytes)"
            )
        return self

    def message_schema(self) -> pa.Schema:
        """The payload fields as messages spell them (``userId``)."""
        if self.format == "raw":
            return pa.schema([("value", pa.binary())])
        return pa.schema([(str(name), arrow_type(str(t))) for name, t in self.columns.items()])

    def payload_schema(self) -> pa.Schema:
        """The payload columns as they land (snake_case: ``user_id``)."""
        schema = self.message_schema()
        return pa.schema([pa.field(snake_case(f.name), f.type) for f in schema])

    def landed_schema(self) -> pa.Schema:
        """The landed table: the payload's columns, then the message metadata."""
        payload = self.payload_schema()
        return pa.schema([*payload, *(pa.field(n, t) for n, t in METADATA)])


class RegistryFreeTableOptions(StreamTableOptions):
    """A broker table whose source has no schema registry (NATS, MQTT): json or raw only."""

    @field_validator("format")
    @classmethod
    def _no_registry(cls, value: Format) -> Format:
        if value in ("avro", "protobuf"):
            raise PydanticCustomError(
                "invalid", "{format} needs a schema registry (kafka only): use json or raw", {"format": value}
            )
        return value
