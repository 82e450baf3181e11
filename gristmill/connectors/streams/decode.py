"""A micro-batch of raw messages to Arrow: the well-formed ones as rows of the landed schema,
the others, with their bytes and the reason, as rejected rows.

JSON goes through Arrow's parser in one call for the whole batch; a batch holding bad messages
is screened by one DuckDB statement for them, and the rest parsed in one more call, so neither a
clean stream nor one with bad messages loops in Python over its messages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from gristmill._util.duckdb_extensions import connect
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
    """Parse the batch in one call; when that fails, screen it for the messages that cannot be
    rows and parse the others in one more call."""
    values = delivery.values
    # A bytearray: a batch with bad messages has them blanked out of it in place, not in a copy.
    buffer = bytearray(b"\n").join([v or b"" for v in values] if not all(values) else values)  # type: ignore[arg-type]
    if all(values) and buffer.count(b"\n") == len(values) - 1:  # the usual batch: one good line each
        try:
            payload = _read_json(buffer, schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            if payload.num_rows == len(values):
                return _with_metadata(payload, delivery), REJECTED.empty_table()
    return _json_screened(delivery, schema, buffer)


def _json_screened(delivery: Delivery, schema: pa.Schema, buffer: bytearray) -> tuple[pa.Table, pa.Table]:
    """A batch holding bad messages (``buffer``: its messages joined by newlines).

    Each Arrow parse costs ~0.1 ms however small, and one that fails tells nothing of the rows
    after the first bad one: isolating bad messages by bisection cost 2·log2(batch) parses and
    buffer copies per bad message, and with 1% of them bad, thousands a batch (measured in
    bench/streaming: 6x the CPU per event of a clean stream).
    Instead one DuckDB statement looks at every message at once (valid JSON, an object, one
    line, each declared field of a JSON kind its column takes) and names the few suspects;
    Python looks at those alone (orjson: the reason, or a pretty-printed message made one line);
    the bad ones are blanked out of the buffer (Arrow skips blank lines) and one parse reads the
    rest. Only a value of the right kind that does not convert (a timestamp string that does not
    parse, 1.5 for a bigint) is left to that parse to find, by bisection."""
    values = delivery.values
    messages = pa.array(values, pa.large_binary())  # 64-bit offsets: one array whatever the batch's size
    bad: dict[int, str] = {}
    lines: dict[int, bytes] = {}  # suspects that are good after all: pretty-printed JSON made one line
    for i in _suspects(messages, schema):
        value = values[i]
        if not value:
            bad[i] = "empty message (no value)"
            continue
        judged = _judge(value, schema)
        if isinstance(judged, str):
            bad[i] = judged
        elif judged is not value:
            lines[i] = judged
    keep = bytearray(b"\x01") * len(values)
    for i in bad:
        keep[i] = 0
    if all(len(line) <= len(values[i] or b"") for i, line in lines.items()):
        # Blank the bad messages out where they stand (same length, so every other message
        # keeps its place): no copy of the batch message by message.
        patched = buffer
        offsets = pa.Array.from_buffers(pa.int64(), len(values) + 1, [None, messages.buffers()[1]])
        for i in (*bad, *lines):
            start = offsets[i].as_py() + i  # the newlines before it
            end = offsets[i + 1].as_py() + i
            line = lines.get(i, b"")
            patched[start:end] = line + b" " * (end - start - len(line))
        parsed = _parse_all(patched, len(values) - len(bad), schema)
    else:  # a compacted message longer than its original (rare): join the good ones afresh
        parsed = None
    parts = [parsed] if parsed is not None else []
    if parsed is None:  # rare: a value of the right kind that does not convert; find it among the good
        good_at = [i for i in range(len(values)) if keep[i]]
        parts, more = _bisected([lines.get(i) or values[i] or b"" for i in good_at], schema)
        for at, reason in more:
            bad[good_at[at]] = reason
            keep[good_at[at]] = 0
    good = pc.indices_nonzero(pa.Array.from_buffers(pa.uint8(), len(keep), [None, pa.py_buffer(keep)]))
    rows = pa.concat_tables(parts).combine_chunks() if parts else schema.empty_table()
    return (
        _with_metadata(rows, delivery, good if bad else None),
        _rejected(delivery, sorted(bad.items())),
    )


def _parse_all(buffer: bytearray, expected: int, schema: pa.Schema) -> pa.Table | None:
    """One parse of the batch with its bad messages blanked: the ``expected`` rows, or None."""
    try:
        payload = _read_json(buffer, schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return payload if payload.num_rows == expected else None


_KINDS: dict[pa.DataType, tuple[str, ...]] = {
    pa.int64(): ("BIGINT", "UBIGINT"),
    pa.float64(): ("BIGINT", "UBIGINT", "DOUBLE"),
    pa.bool_(): ("BOOLEAN",),
    pa.string(): ("VARCHAR",),
    pa.date32(): ("BIGINT", "UBIGINT"),  # Arrow reads a date from a number of days
    pa.timestamp("us"): ("VARCHAR",),
    pa.timestamp("us", tz="UTC"): ("VARCHAR",),
}
"""The JSON kinds (as DuckDB's ``json_type`` names them) Arrow's reader takes into a column of
each type: anything else fails the parse (``changed from number to string``). Decimals take
numbers and strings, so any kind but the containers."""

_PY_KINDS = {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "VARCHAR", list: "ARRAY", dict: "OBJECT"}


def _kinds(type: pa.DataType) -> tuple[str, ...]:
    if pa.types.is_decimal(type):
        return ("BIGINT", "UBIGINT", "DOUBLE", "VARCHAR")
    return _KINDS.get(type, ("BIGINT", "UBIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "ARRAY", "OBJECT"))


_screen_lock = threading.Lock()
_screen_con: duckdb.DuckDBPyConnection | None = None
_screens: dict[pa.Schema, str] = {}


def _screen_sql(schema: pa.Schema) -> str:
    """One statement flagging, per message, whether it may not make a row of ``schema``."""
    found = _screens.get(schema)
    if found is None:
        paths = ["'$'"]
        tests = ["k[1] = 'OBJECT'"]
        for n, field in enumerate(schema, start=2):
            path = "$." + orjson.dumps(field.name).decode()  # quoted: any key, dots included
            paths.append("'" + path.replace("'", "''") + "'")
            allowed = ", ".join(f"'{kind}'" for kind in (*_kinds(field.type), "NULL"))
            tests.append(f"coalesce(k[{n}] IN ({allowed}), true)")  # SQL NULL: the key is absent
        kinds = f"json_type(v, [{', '.join(paths)}])"
        found = (
            "SELECT coalesce(NOT (" + " AND ".join(tests) + "), true) AS suspect FROM "
            f"(SELECT CASE WHEN json_valid(v) AND NOT contains(v, '\n') THEN {kinds} END AS k "
            "FROM _gm_messages)"
        )
        _screens[schema] = found
    return found


def _suspects(messages: pa.Array, schema: pa.Schema) -> list[int]:
    """The positions of the messages that may not make a row: empty, not JSON, not an object,
    spanning lines, or with a field of a kind its column does not take (one DuckDB statement
    over the batch; its own in-memory connection, one thread)."""
    global _screen_con
    # Binary viewed as text without a copy or a UTF-8 check: DuckDB's JSON reader judges the bytes.
    table = pa.table({"v": messages.view(pa.large_string())})
    with _screen_lock:
        if _screen_con is None:
            _screen_con = connect(config={"threads": 1})
        con = _screen_con
        con.register("_gm_messages", table)
        try:
            flags = con.execute(_screen_sql(schema)).to_arrow_table()["suspect"]
        finally:
            con.unregister("_gm_messages")
    found: list[int] = pc.indices_nonzero(flags).to_pylist()
    return found


def _judge(value: bytes, schema: pa.Schema) -> bytes | str:
    """A suspect message on its own: why it cannot be a row, or the one line Arrow should read
    (a pretty-printed object)."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as bad:
        return f"not JSON: {bad}"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    for field in schema:
        got = record.get(field.name)
        if got is None:
            continue
        kind = _PY_KINDS.get(type(got), "?")
        if kind not in _kinds(field.type):
            return (
                f"does not match the declared columns: {field.name} is a JSON {_JSON_NAMES.get(kind, kind)}"
                f" ({_excerpt(got)}), the column is {_spelled(field.type)}"
            )
    return orjson.dumps(record) if b"\n" in value else value


_JSON_NAMES = {
    "BOOLEAN": "boolean",
    "BIGINT": "integer",
    "DOUBLE": "number",
    "VARCHAR": "string",
    "ARRAY": "array",
    "OBJECT": "object",
}


def _spelled(type: pa.DataType) -> str:
    """A column type as a source file declares it."""
    if pa.types.is_decimal(type):
        return f"decimal({type.precision},{type.scale})"
    names = {
        pa.int64(): "bigint",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.timestamp("us"): "timestamp",
        pa.timestamp("us", tz="UTC"): "timestamptz",
    }
    return names.get(type, str(type))


def _excerpt(value: object) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def _bisected(values: list[bytes], schema: pa.Schema) -> tuple[list[pa.Table], list[tuple[int, str]]]:
    """Parse ``values`` (each one line); when a parse fails, halves of it, recursively, until
    the bad message is alone. (position, parsed rows) in order, and the bad ones with why."""
    bad: list[tuple[int, str]] = []
    parts: list[tuple[int, pa.Table]] = []
    pending = [(0, len(values))] if values else []
    while pending:
        start, end = pending.pop()
        buffer = b"\n".join(values[start:end])
        try:
            payload = _read_json(buffer, schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            failure: Exception | None = err
        else:
            failure = None if payload.num_rows == end - start else ValueError("not one JSON object")
        if failure is None:
            parts.append((start, payload))
            continue
        if end - start == 1:
            bad.append((start, _reason(values[start], failure)))
            continue
        middle = (start + end) // 2
        pending += [(middle, end), (start, middle)]
    parts.sort(key=lambda part: part[0])
    return [t for _, t in parts], bad


def _read_json(buffer: bytes | bytearray, schema: pa.Schema) -> pa.Table:
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


def _with_metadata(
    payload: pa.Table, delivery: Delivery, rows: list[int] | pa.Array | None = None
) -> pa.Table:
    """``payload`` with the metadata of the messages it came from (``rows``: their positions in
    the batch, when some were rejected), taken column-wise by Arrow."""
    at = None if rows is None else rows if isinstance(rows, pa.Array) else pa.array(rows, pa.int64())

    def column(name: str, type: pa.DataType) -> pa.Array:
        values = delivery.arrow(name, type)
        return values if at is None else values.take(at)

    topics = delivery.topics
    one_topic = bool(topics) and topics.count(topics[0]) == len(topics)
    arrays = [
        _repeated(topics[0], payload.num_rows) if one_topic else column("topics", pa.string()),
        column("partitions", pa.int32()),
        column("offsets", pa.int64()),
        column("timestamps", pa.timestamp("ms", tz="UTC")),
        column("keys", pa.binary()),
    ]
    names = [name for name, _ in METADATA]
    return pa.Table.from_arrays([*payload.columns, *arrays], names=[*payload.column_names, *names])


def _repeated(topic: str, count: int) -> pa.Array:
    """One topic for the whole batch (the usual case), without converting a string per message."""
    return pa.repeat(pa.scalar(topic, pa.string()), count)


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
