"""Structs flattened in Arrow, before staging, for engines that stage no nested types.

PostgreSQL stages an Arrow struct as ``jsonb`` (engines/postgres/arrow.py), so the SQL that
flattens structs for ``nested: child_tables`` (sql/nesting.py, ``s.a`` → ``s__a``) has no struct
to read there. Flattening the batches as they stream in gives the staged table the columns
DuckDB's SQL would make, named the same way, and everything after staging (row ids, contracts,
child tables of lists of scalars, which PostgreSQL stages as arrays) is unchanged. Whole columns at
a time (``pyarrow.compute.struct_field``, which makes a field NULL where its struct is); no Python
loop over rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from gristmill._util.naming import snake_case

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa


def _flat(
    name: str, dtype: pa.DataType, depth: int, max_depth: int | None
) -> list[tuple[str, pa.DataType, tuple[int, ...]]]:
    """(column name, type, path of struct field indices) of the columns ``name`` becomes."""
    import pyarrow as pa

    if not pa.types.is_struct(dtype) or (max_depth is not None and depth >= max_depth):
        return [(name, dtype, ())]
    out = []
    for index, child in enumerate(dtype):
        for flat, flat_type, path in _flat(
            f"{name}__{snake_case(child.name)}", child.type, depth + 1, max_depth
        ):
            out.append((flat, flat_type, (index, *path)))
    return out


def flatten_structs(reader: pa.RecordBatchReader, max_depth: int | None) -> pa.RecordBatchReader:
    """``reader`` with its struct columns (to ``max_depth``) as ``parent__field`` columns; a
    reader without structs is returned as it is."""
    import pyarrow as pa

    plan = [(f.name, _flat(f.name, f.type, 0, max_depth)) for f in reader.schema]
    if all(len(flat) == 1 and not flat[0][2] for _, flat in plan):
        return reader
    schema = pa.schema([pa.field(name, dtype) for _, flat in plan for name, dtype, _ in flat])

    def batches() -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        for batch in reader:
            columns = []
            for (source, flat), column in zip(plan, batch.columns, strict=True):
                del source
                for _, _, path in flat:
                    columns.append(pc.struct_field(column, list(path)) if path else column)
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
