"""A micro-batch of raw messages to Arrow: the well-formed ones as rows of the landed schema,
the others, with their bytes and the reason, as rejected rows.

JSON goes through Arrow's parser in one call for the whole batch; only a batch holding a bad
message is parsed again message by message to find it, so a clean stream never loops in Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pj

from gristmill.connectors.streams.config import METADATA, REJECTED, StreamTableOptions
from gristmill.connectors.streams.feed import Delivery
from gristmill.errors import GristmillError

Deserializer = Callable[[bytes, str], dict[str, Any]]
"""(value, topic) -> record, for formats decoded per message (Avro and Protobuf through a schema
registry)."""


def decode(
    delivery: Delivery, options: StreamTableOptions, deserialize: Deserializer | None = None
) -> tuple[pa.Table, pa.Table]:
    """(rows with the landed schema, rejected messages with the ``REJECTED`` schema)."""
    rows, rejected = _decode(delivery, options, deserialize)
    landed = options.landed_schema().names
    return (rows if rows.column_names == landed else rows.rename_columns(landed)), rejected


def _decode(
    delivery: Delivery, options: StreamTableOptions, deserialize: Deserializer | None
) -> tuple[pa.Table, pa.Table]:
    schema = options.message_schema()  # fields as the messages spell them; renamed afterwards
    if not len(delivery):
        return options.landed_schema().empty_table(), REJECTED.empty_table()
    if options.format == "raw":
        return _with_metadata(pa.table({"value": pa.array(delivery.values, pa.binary())}), delivery), (
            REJECTED.empty_table()
        )
    per_message = {"avro": "Avro", "protobuf": "Protobuf"}  # decoded through a schema registry
    if options.format in per_message:
        assert deserialize is not None, f"a {options.format} table needs the source's deserializer"
        return _per_message(delivery, schema, deserialize, per_message[options.format])
    return _json(delivery, schema)


def _json(delivery: Delivery, schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
    """Parse the batch in one call; when that fails, halves of it, recursively, so a bad message
    costs about 2·log2(batch) parses, not one per message."""
    values = delivery.values
    if all(values):  # the usual batch: every message one line of good JSON
        buffer = b"\n".join(values)  # type: ignore[arg-type]
        if buffer.count(b"\n") == len(values) - 1:
            try:
                payload = _read_json(buffer, schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                if payload.num_rows == len(values):
                    return _with_metadata(payload, delivery), REJECTED.empty_table()
    return _json_bisected(delivery, schema)


def _json_bisected(delivery: Delivery, schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
    values = delivery.values
    bad: list[tuple[int, str]] = [(i, "empty message (no value)") for i, v in enumerate(values) if not v]
    parts: list[tuple[int, pa.Table]] = []
    pending = [[i for i, v in enumerate(values) if v]] if len(bad) < len(values) else []
    while pending:
        chunk = pending.pop()
        whole = len(chunk) == len(values)  # the common case: no copy of the list
        buffer = b"\n".join(values if whole else [values[i] for i in chunk])  # type: ignore[arg-type,misc]
        if buffer.count(b"\n") == len(chunk) - 1:  # no message spans lines
            try:
                payload = _read_json(buffer, schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                failure: Exception | None = err
            else:
                failure = None if payload.num_rows == len(chunk) else ValueError("not one JSON object")
            if failure is None:
                parts.append((chunk[0], payload))
                continue
        else:
            failure = ValueError("a message spans several lines")
        if len(chunk) == 1:
            if failure is not None and "spans" in str(failure):  # pretty-printed JSON: parse it alone
                try:
                    compact = orjson.dumps(orjson.loads(values[chunk[0]] or b""))
                    parts.append((chunk[0], _read_json(compact, schema)))
                    continue
                except Exception as err:  # a bad message is rejected with why
                    failure = err
            bad.append((chunk[0], _reason(values[chunk[0]] or b"", failure or ValueError("?"))))
            continue
        middle = len(chunk) // 2
        pending += [chunk[middle:], chunk[:middle]]
    parts.sort(key=lambda part: part[0])
    good = sorted(set(range(len(values))) - {i for i, _ in bad})
    rows = pa.concat_tables([t for _, t in parts]).combine_chunks() if parts else schema.empty_table()
    bad.sort()
    return _with_metadata(rows, delivery, None if not bad else good), _rejected(delivery, bad)


def _read_json(buffer: bytes, schema: pa.Schema) -> pa.Table:
    table = pj.read_json(
        pa.BufferReader(buffer),
        # One block, one thread: Arrow's thread pool spends more CPU handing a batch around than
        # it saves (the batch is one of many; throughput per CPU-second is what counts).
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(buffer) + 1)),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    return table.select(schema.names).cast(schema)


def _per_message(
    delivery: Delivery, schema: pa.Schema, parse: Callable[[bytes, str], Any], format_name: str
) -> tuple[pa.Table, pa.Table]:
    """Avro or Protobuf: each message on its own (the registry's deserializer works per
    message), so one bad message costs only itself."""
    good: list[int] = []
    parts: list[pa.Table] = []
    bad: list[tuple[int, str]] = []
    for i, (value, topic) in enumerate(zip(delivery.values, delivery.topics, strict=True)):
        if not value:
            bad.append((i, "empty message (no value)"))
            continue
        try:
            parsed = parse(value, topic)
            if isinstance(parsed, dict):
                parsed = pa.Table.from_pylist([{n: parsed.get(n) for n in schema.names}], schema=schema)
            if not isinstance(parsed, pa.Table) or parsed.num_rows != 1:
                raise ValueError("not one record")
        except GristmillError:
            raise  # the registry is down or refuses us: not the message's fault
        except Exception as err:  # any decoding failure rejects the message, with why
            reason = f"cannot be read as {format_name} with the declared columns: {_first_line(err)}"
            bad.append((i, reason))
            continue
        good.append(i)
        parts.append(parsed)
    rows = pa.concat_tables(parts).combine_chunks() if parts else schema.empty_table()
    return _with_metadata(rows, delivery, good), _rejected(delivery, bad)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _reason(value: bytes, err: Exception) -> str:
    text = _first_line(err)
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as bad:
        return f"not JSON: {bad}"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    return f"does not match the declared columns: {text}"


def _with_metadata(payload: pa.Table, delivery: Delivery, rows: list[int] | None = None) -> pa.Table:
    def pick(values: list[Any]) -> list[Any]:
        return values if rows is None else [values[i] for i in rows]

    topics = pick(delivery.topics)
    whole = rows is None  # every message: the batch's own Arrow columns serve
    columns = {
        "_gm_topic": _repeated(topics) if topics and topics.count(topics[0]) == len(topics) else topics,
        "_gm_partition": delivery.arrow("partitions", pa.int32()) if whole else pick(delivery.partitions),
        "_gm_offset": delivery.arrow("offsets", pa.int64()) if whole else pick(delivery.offsets),
        "_gm_timestamp": pick(delivery.timestamps),
        "_gm_key": pick(delivery.keys),
    }
    arrays = [
        value if isinstance(value, pa.Array) else pa.array(value, type)
        for value, (_, type) in zip(columns.values(), METADATA, strict=True)
    ]
    return pa.Table.from_arrays([*payload.columns, *arrays], names=[*payload.column_names, *columns])


def _repeated(topics: list[str]) -> pa.Array:
    """One topic for the whole batch (the usual case), without converting a string per message."""
    return pa.repeat(pa.scalar(topics[0], pa.string()), len(topics))


def _rejected(delivery: Delivery, bad: list[tuple[int, str]]) -> pa.Table:
    if not bad:
        return REJECTED.empty_table()
    at = [i for i, _ in bad]
    return pa.table(
        {
            "topic": [delivery.topics[i] for i in at],
            "partition": [delivery.partitions[i] for i in at],
            "offset": [delivery.offsets[i] for i in at],
            "timestamp": [delivery.timestamps[i] for i in at],
            "key": [delivery.keys[i] for i in at],
            "value": [delivery.values[i] for i in at],
            "reason": [reason for _, reason in bad],
        },
        schema=REJECTED,
    )
