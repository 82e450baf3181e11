"""One table's changes out of a peeked pgoutput stream, and its snapshot, as Arrow record batches.

pypgoutput decodes the messages; here they become rows of text values aligned to the table's
current columns (older relation versions are mapped by name: dropped columns are ignored, added
ones are null), and each batch of rows becomes Arrow arrays one column at a time."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from pypgoutput import Begin, Delete, Insert, Relation, Truncate, TupleData, Update

from gristmill.connectors.postgres_cdc.pgtypes import Column, schema, typed
from gristmill.connectors.postgres_cdc.server import TableInfo, format_lsn
from gristmill.errors import SourceError

Row = list[str | None]


def _signed32(value: int) -> int:
    """Relation ids as pypgoutput reads them (signed), so OIDs above 2**31 still compare equal."""
    return value - (1 << 32) if value >= (1 << 31) else value


class _Batcher:
    """Collects (op, lsn, row) and emits record batches; ``_gm_seq`` counts over the whole read."""

    def __init__(self, columns: Sequence[Column], what: str) -> None:
        self.columns = columns
        self.schema = schema(columns)
        self.what = what
        self.seq = 0
        self.ops: list[str] = []
        self.lsns: list[int] = []
        self.rows: list[Row] = []

    def add(self, op: str, lsn: int, row: Row) -> None:
        self.ops.append(op)
        self.lsns.append(lsn)
        self.rows.append(row)

    def flush(self) -> pa.RecordBatch:
        count = len(self.rows)
        texts = zip(*self.rows, strict=True) if count else ([] for _ in self.columns)
        arrays = [
            self.typed(pa.array(values, pa.string()), c)
            for values, c in zip(texts, self.columns, strict=True)
        ]
        batch = self.batch(arrays, pa.array(self.ops, pa.string()), pa.array(self.lsns, pa.int64()), count)
        self.ops, self.lsns, self.rows = [], [], []
        return batch

    def typed(self, text: pa.Array, column: Column) -> pa.Array:
        try:
            return typed(text, column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as err:
            raise SourceError(
                f'{self.what}: column "{column.name}" cannot be read as {column.arrow_type}: {err}'
            ) from None

    def batch(self, arrays: list[pa.Array], ops: pa.Array, lsns: pa.Array, count: int) -> pa.RecordBatch:
        seqs = pa.array(range(self.seq, self.seq + count), pa.int64())
        self.seq += count
        return pa.RecordBatch.from_arrays([*arrays, ops, lsns, seqs], schema=self.schema)


class Changes:
    """The changes of ``table`` committed at or after ``since``, read from pgoutput messages.

    After the stream is exhausted, ``last`` is the highest commit LSN handed out (None if none)."""

    def __init__(
        self, table: TableInfo, key: Sequence[str], since: int | None, batch_rows: int, what: str
    ) -> None:
        self.table = table
        self.relation_id = _signed32(table.oid)
        self.key = tuple(key)
        self.since = since
        self.batch_rows = batch_rows
        self.what = what
        self.last: int | None = None
        self._out = _Batcher(table.columns, what)
        self._index = {c.name: i for i, c in enumerate(table.columns)}
        self._positions: list[int | None] | None = None
        self._key_positions: list[int] = []

    @property
    def schema(self) -> pa.Schema:
        return self._out.schema

    def batches(self, messages: Iterable[bytes]) -> Iterator[pa.RecordBatch]:
        lsn, wanted = 0, False
        for data in messages:
            kind = data[:1]
            if kind == b"B":
                # the commit LSN of the transaction, known up front: rows stream without buffering
                lsn = Begin(data).lsn
                wanted = self.since is None or lsn >= self.since
            elif kind == b"R":
                # kept even in skipped transactions: pgoutput sends a relation once per session
                relation = Relation(data)
                if relation.relation_id == self.relation_id:
                    self._layout(relation)
            elif kind in (b"I", b"U", b"D") and wanted and self._mine(data):
                self._change(kind, data, lsn)
                if len(self._out.rows) >= self.batch_rows:
                    yield self._out.flush()
            elif kind == b"T" and wanted and self.relation_id in Truncate(data).relation_ids:
                raise SourceError(
                    f"{self.what}: {self.table.qualified} was truncated (commit LSN {format_lsn(lsn)}), and"
                    " a TRUNCATE cannot be replayed as row changes",
                    hint="reload the table from a fresh snapshot: drop the replication slot"
                    " (SELECT pg_drop_replication_slot('<slot>')) and run a full refresh of the source",
                )
        if self._out.rows:
            yield self._out.flush()

    def _mine(self, data: bytes) -> bool:
        return int.from_bytes(data[1:5], "big", signed=True) == self.relation_id

    def _layout(self, relation: Relation) -> None:
        self._positions = [self._index.get(c.name) for c in relation.columns]
        if self.key:
            landed = {c.landed: i for i, c in enumerate(self.table.columns)}
            self._key_positions = [landed[k] for k in self.key if k in landed]
        else:
            self._key_positions = [
                p
                for p, c in zip(self._positions, relation.columns, strict=True)
                if c.part_of_pkey and p is not None
            ]

    def _change(self, kind: bytes, data: bytes, lsn: int) -> None:
        if self._positions is None:
            raise SourceError(
                f"{self.what}: a change arrived before its relation message (LSN {format_lsn(lsn)})"
            )
        self.last = lsn
        if kind == b"I":
            self._out.add("insert", lsn, self._row(Insert(data).new_tuple, lsn))
        elif kind == b"D":
            self._out.add("delete", lsn, self._row(Delete(data).old_tuple, lsn))
        else:
            update = Update(data)
            old = None if update.old_tuple is None else self._row(update.old_tuple, lsn)
            full_old = old if update.optional_tuple_identifier == "O" else None
            new = self._row(update.new_tuple, lsn, full_old)
            if old is not None and any(old[p] != new[p] for p in self._key_positions):
                # the key itself changed: the row under the old key is gone
                self._out.add("delete", lsn, old)
            self._out.add("update", lsn, new)

    def _row(self, values: TupleData, lsn: int, old: Row | None = None) -> Row:
        assert self._positions is not None
        row: Row = [None] * len(self._index)
        for position, value in zip(self._positions, values.column_data, strict=True):
            if position is None:
                continue
            if value.col_data_category == "t":
                row[position] = value.col_data
            elif value.col_data_category == "u":
                # pgoutput leaves out TOASTed values an UPDATE did not change; only a full old row has them
                if old is None:
                    raise SourceError(
                        f"{self.what}: an UPDATE (commit LSN {format_lsn(lsn)}) left the large value of"
                        f' "{self.table.columns[position].name}" unchanged, and PostgreSQL does not send'
                        " unchanged TOASTed values",
                        hint=f"ALTER TABLE {self.table.qualified} REPLICA IDENTITY FULL, then reload the"
                        " table from a fresh snapshot",
                    )
                row[position] = old[position]
        return row


def snapshot(chunks: Iterator[bytes], table: TableInfo, lsn: int, what: str) -> Iterator[pa.RecordBatch]:
    """CSV from ``COPY … FORCE_QUOTE *`` as 'insert' rows at ``lsn``, parsed by Arrow block by block."""
    out = _Batcher(table.columns, what)
    names = [f"c{i}" for i in range(len(table.columns))]
    stream = _ChunkStream(chunks)
    if not stream.peek():
        return
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    for block in reader:
        arrays = [out.typed(block.column(i), c) for i, c in enumerate(table.columns)]
        count = block.num_rows
        yield out.batch(
            arrays, pa.repeat(pa.scalar("insert"), count), pa.repeat(pa.scalar(lsn, pa.int64()), count), count
        )


class _ChunkStream(io.RawIOBase):
    """A readable file over an iterator of byte chunks (psycopg's COPY output), for Arrow's CSV reader."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def peek(self) -> bytes:
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
        return self._buffer

    def readinto(self, target: Any) -> int:
        # COPY sends about a row per chunk; Arrow parses whatever one read returns as a block, so
        # fill the whole request (short only at the end) to keep its blocks large.
        wanted = len(target)
        parts, size = [self.peek()], len(self._buffer)
        while size < wanted and (chunk := next(self._chunks, b"")):
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
        size = min(wanted, len(data))
        target[:size] = data[:size]
        self._buffer = data[size:]
        return size
