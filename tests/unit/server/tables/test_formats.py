"""The Arrow IPC stream the data API writes reads back as the batches it was given."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from gristmill.server.tables import formats


def _read(batches: pa.RecordBatchReader) -> pa.Table:
    closed: list[bool] = []
    body = b"".join(formats.stream(batches, "arrow", lambda: closed.append(True)))
    assert closed == [True]
    return pa.ipc.open_stream(pa.py_buffer(body)).read_all()


def test_the_arrow_stream_round_trips_batch_by_batch() -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "amount": pa.array([Decimal("1.10"), None, Decimal("3.00")], pa.decimal128(12, 2)),
            "name": ["a", None, "c"],
        }
    )
    batches = [*table.to_batches(), table.slice(0, 0).to_batches()[0] if table.slice(0, 0).num_rows else None]
    source = pa.RecordBatchReader.from_batches(table.schema, [b for b in batches if b is not None] * 2)
    assert _read(source).equals(pa.concat_tables([table, table]))


def test_an_empty_result_is_a_stream_with_its_schema() -> None:
    schema = pa.schema([("id", pa.int64())])
    assert _read(pa.RecordBatchReader.from_batches(schema, [])).schema == schema


def test_dictionary_columns_go_through_the_writer() -> None:
    table = pa.table({"country": pa.array(["DE", "FR", "DE"]).dictionary_encode()})
    source = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert _read(source).equals(table)


def test_a_compressed_stream_reads_back_as_the_same_table() -> None:
    table = pa.table({"id": list(range(10_000)), "name": ["x" * 20] * 10_000})
    for codec in ("lz4", "zstd"):
        source = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(4096))
        body = b"".join(formats.stream(source, "arrow", lambda: None, formats.compression(codec.upper())))
        assert len(body) < table.nbytes / 2
        assert pa.ipc.open_stream(pa.py_buffer(body)).read_all().equals(table)
    assert formats.compression("brotli") is None and formats.compression(None) is None
