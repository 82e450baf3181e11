"""Nested records reshaped in Arrow, before staging, for engines that stage no nested types.

PostgreSQL stages an Arrow struct, and a list of anything but scalars, as ``jsonb``
(engines/postgres/arrow.py), so the SQL that splits records for ``nested: child_tables``
(sql/nesting.py) finds no struct to flatten and no list of structs to unnest there. Here the
batches are reshaped as they stream in, the way that SQL would on DuckDB: structs become
``parent__field`` columns, and each list of structs (or of lists, or of maps) leaves its parent
for a table of its elements, one row per element, carrying:

- ``_gm_link``: the parent row's number (the root record's ``_gm_ord``, or the parent element's
  ``_gm_seq``), by which the SQL joins it to the parent's row id;
- ``_gm_list_index``: its 1-based position in the list; ``_gm_seq``: its own number;
- ``_gm_ord``: the root record's arrival number (contract messages name the record).

Lists of scalars stay in their row (the engine stages them as arrays and the SQL unnests them).
Whole columns at a time (``list_flatten``, ``list_parent_indices``, ``struct_field``, which makes
a field NULL where its struct is); no Python loop over rows. The element tables are held in
memory until the parent rows are staged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gristmill._util.naming import snake_case
from gristmill.sql import nesting, writes

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

LINK = "_gm_link"
SEQ = "_gm_seq"
IDS = (LINK, nesting.LIST_INDEX, SEQ, writes.ORDINAL)
"""The columns of an element table that are not the element's."""


@dataclass
class Elements:
    """The elements of one list: a child table, under the root (``parent`` None) or under the
    elements of another list (its index in :attr:`Splitter.lists`)."""

    name: str
    parent: int | None
    depth: int
    schema: pa.Schema | None = None
    batches: list[pa.RecordBatch] = field(default_factory=list)
    depths: dict[str, int] = field(default_factory=dict)
    """Each element column's nesting depth, for ``max_depth`` below it."""


@dataclass
class _Level:
    links: pa.Array
    ords: pa.Array
    parent: int | None
    collect: bool
    out: list[tuple[str, pa.Array, int]] = field(default_factory=list)


class Splitter:
    """Splits batches of ``schema`` into flat root rows (:meth:`reader`) and :attr:`lists`."""

    def __init__(self, schema: pa.Schema, max_depth: int | None) -> None:
        import pyarrow as pa

        self.max_depth = max_depth
        self.lists: list[Elements] = []
        self._found: dict[tuple[int | None, str], int] = {}
        self._seq = 0
        # An empty batch walks the schema once: every table's columns are known before any row.
        empty = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
        self.schema = self._split(empty, collect=False).schema

    def reader(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, (self._split(b, collect=True) for b in reader))

    def elements(self, index: int) -> pa.RecordBatchReader:
        import pyarrow as pa

        found = self.lists[index]
        assert found.schema is not None
        return pa.RecordBatchReader.from_batches(found.schema, iter(found.batches))

    def _split(self, batch: pa.RecordBatch, *, collect: bool) -> pa.RecordBatch:
        import pyarrow as pa

        ordinal = batch.column(writes.ORDINAL)
        level = _Level(ordinal, ordinal, None, collect)
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if name == writes.ORDINAL:
                level.out.append((name, column, 0))
            else:
                self._column(name, column, 0, level)
        return pa.RecordBatch.from_arrays([c for _, c, _ in level.out], names=[n for n, _, _ in level.out])

    def _deep(self, depth: int) -> bool:
        return self.max_depth is not None and depth >= self.max_depth

    def _column(self, name: str, values: pa.Array, depth: int, level: _Level) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        dtype = values.type
        if pa.types.is_struct(dtype) and not self._deep(depth):
            for i, child in enumerate(dtype):
                self._column(
                    f"{name}__{snake_case(child.name)}", pc.struct_field(values, [i]), depth + 1, level
                )
        elif nesting.is_list(dtype) and nesting.is_nested(dtype.value_type) and not self._deep(depth):
            self._explode(name, values, depth + 1, level)
        else:
            level.out.append((name, values, depth))

    def _explode(self, name: str, values: pa.Array, depth: int, level: _Level) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        index = self._found.setdefault((level.parent, name), len(self.lists))
        if index == len(self.lists):
            self.lists.append(Elements(name, level.parent, depth))
        flat = pc.list_flatten(values)
        owners = pc.list_parent_indices(values).to_numpy(zero_copy_only=False)
        count = len(flat)
        # position in its list: the distance from its list's first element (elements come
        # grouped by list, in order)
        starts = np.r_[True, owners[1:] != owners[:-1]] if count else np.zeros(0, bool)
        first = (
            np.maximum.accumulate(np.where(starts, np.arange(count), 0)) if count else np.zeros(0, np.int64)
        )
        seq = pa.array(np.arange(self._seq, self._seq + count, dtype=np.int64))
        self._seq += count
        ords = pc.take(level.ords, pa.array(owners))
        ids = [pc.take(level.links, pa.array(owners)), pa.array(np.arange(count) - first + 1), seq, ords]
        inner = _Level(seq, ords, index, level.collect)
        element = flat.type
        if pa.types.is_struct(element) and not self._deep(depth):
            for i, child in enumerate(element):
                self._column(snake_case(child.name), pc.struct_field(flat, [i]), depth + 1, inner)
        else:
            self._column("value", flat, depth, inner)
        batch = pa.RecordBatch.from_arrays(
            [*ids, *(c for _, c, _ in inner.out)], names=[*IDS, *(n for n, _, _ in inner.out)]
        )
        found = self.lists[index]
        if found.schema is None:
            found.schema = batch.schema
            found.depths = {n: d for n, _, d in inner.out}
        if level.collect and count:
            found.batches.append(batch)
