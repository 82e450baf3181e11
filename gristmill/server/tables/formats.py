"""The formats a table is served in: JSON pages (with their schema), CSV, Parquet, Arrow IPC.

JSON cannot hold a DECIMAL or a 64-bit integer exactly in every client (JavaScript's numbers are
doubles), so those travel as strings and the schema says so (``"type": "string", "format":
"decimal"``). The bulk formats are written batch by batch as the engine produces them: memory
stays bounded by one record batch, whatever the table's size.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

from gristmill.server.reading import ServedColumn
from gristmill.server.tables.grammar import family

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
_ACCEPTED = {
    "application/json": "json",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
}
_WIDE_INTEGERS = {"BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT", "UINTEGER"}


def negotiate(accept: str | None) -> str:
    """The first format of the ``Accept`` header we write; JSON when none."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    return "json"


def json_schema(column: ServedColumn) -> dict[str, Any]:
    """The JSON Schema of one column's values as a JSON page carries them."""
    kind = family(column)
    base = column.type.upper().split("(", 1)[0].strip()
    schema: dict[str, Any]
    if kind == "integer" and base in _WIDE_INTEGERS:
        schema = {"type": "string", "format": "int64" if base in {"BIGINT", "UINTEGER"} else "int128"}
    elif kind == "integer":
        schema = {"type": "integer"}
    elif kind == "decimal":
        schema = {"type": "string", "format": "decimal"}
    elif kind == "float":
        schema = {"type": "number"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind in {"date", "time"}:
        schema = {"type": "string", "format": kind}
    elif kind == "timestamp":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "text":
        schema = {"type": "string"}
    else:
        schema = {}
    if "type" in schema:
        schema["type"] = [schema["type"], "null"]
    schema["x-sql-type"] = column.type
    if column.description:
        schema["description"] = column.description
    return schema


def json_rows(table: pa.Table, columns: list[ServedColumn]) -> list[dict[str, Any]]:
    """The page's rows, decimals and wide integers as strings (what the schema says)."""
    as_text = {c.name for c in columns if "string" in json_schema(c).get("type", ())}
    rows = table.to_pylist()
    return [{k: _json_value(v, k in as_text) for k, v in row.items()} for row in rows]


def _json_value(value: Any, as_text: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | int) and not isinstance(value, bool) and as_text:
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _json_value(v, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v, False) for v in value]
    return value


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False).encode()


class _Sink(io.RawIOBase):
    """A file the Arrow writers write into and the response reads out of, chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The Arrow IPC stream's end marker: a continuation token and a zero-length message."""


def arrow_stream(batches: pa.RecordBatchReader) -> Iterator[bytes | memoryview]:
    """The Arrow IPC stream format without a writer: the schema's message, each batch's message
    (``serialize`` writes one contiguous buffer, handed to the socket as it is, no copy
    in Python) and the end marker. A schema with dictionary columns needs dictionary messages
    too, which only the writer makes."""
    yield memoryview(batches.schema.serialize())
    for batch in batches:
        if batch.num_rows:
            yield memoryview(batch.serialize())
    yield _END_OF_STREAM


ARROW_COMPRESSION = "Gristmill-Arrow-Compression"
"""The request header asking for Arrow IPC body compression (``lz4`` or ``zstd``); the response
carries it back when it is applied. Any Arrow reader decompresses such a stream itself."""
COMPRESSIONS = ("lz4", "zstd")


def compression(header: str | None) -> str | None:
    """The compression a client asked for and we write, or None."""
    asked = (header or "").strip().lower()
    return asked if asked in COMPRESSIONS else None


def stream(
    batches: pa.RecordBatchReader, fmt: str, on_close: Any, compress: str | None = None
) -> Iterator[bytes | memoryview]:
    """``batches`` written as ``fmt``, yielded a batch at a time; ``on_close`` runs at the end
    (the pinned read is released even when the client goes away). ``compress``: Arrow IPC body
    compression (lz4 or zstd), written by the IPC writer."""
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    plain = compress is None and not any(pa.types.is_dictionary(f.type) for f in batches.schema)
    if fmt == "arrow" and plain:
        try:
            yield from arrow_stream(batches)
        finally:
            on_close()
        return
    sink = _Sink()
    writer: Any
    try:
        if fmt == "csv":
            writer = pacsv.CSVWriter(sink, batches.schema)
        elif fmt == "parquet":
            writer = pq.ParquetWriter(sink, batches.schema)
        else:
            writer = ipc.new_stream(sink, batches.schema, options=ipc.IpcWriteOptions(compression=compress))
        yield sink.take()
        for batch in batches:
            if fmt == "parquet":
                writer.write_batch(batch)
            else:
                writer.write(batch)
            chunk = sink.take()
            if chunk:
                yield chunk
        writer.close()
        yield sink.take()
    finally:
        on_close()
