"""Pages of JSON records as Arrow record batches with one schema for the whole stream.

The first page fixes the schema; every later page is conformed to it (missing keys become
nulls, types are cast where no value changes). A key seen only later, or a value that does not
fit, is an error naming the field: a stream never drops data silently."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill._util.naming import snake_case
from gristmill.errors import SourceError

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)


def to_struct(records: list[Any], where: str) -> pa.StructArray | None:
    """The page's records as one struct array (Arrow's C++ converter infers the types), or None
    for an empty page."""
    if not records:
        return None
    try:
        array = pa.array(records)
    except _ARROW_ERRORS as err:
        raise SourceError(f"{where}: the records do not convert to Arrow: {err}{_culprit(records)}") from None
    if not isinstance(array, pa.StructArray):
        raise SourceError(
            f"{where}: the records are {array.type} values, not JSON objects",
            hint='point "records" at the list of objects in the response',
        )
    return array


def _culprit(records: list[Any]) -> str:
    """Which field holds values of clashing types. Only on the error path: it visits every row."""
    objects = [r for r in records if isinstance(r, dict)]
    if len(objects) < len(records):
        return " (the list mixes objects with other values)"
    for key in dict.fromkeys(k for r in objects for k in r):
        try:
            pa.array([r.get(key) for r in objects])
        except _ARROW_ERRORS:
            return f' (field "{key}" mixes types)'
    return ""


def _settled(kind: pa.DataType) -> pa.DataType:
    """A type for the stream: a field that is null throughout the first page lands as string."""
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_settled(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _settled(f.type)) for f in kind])
    return kind


class Landing:
    """The landed schema of one table's stream, and the conversion of each page to it."""

    def __init__(self, first: pa.StructArray | None, declared: dict[str, pa.DataType], what: str) -> None:
        self.what = what
        fields: dict[str, pa.Field] = {}
        sources: dict[str, str] = {}
        for field in first.type if first is not None else []:
            name = snake_case(field.name)
            if name in fields:
                raise SourceError(
                    f'{what}: fields "{sources[name]}" and "{field.name}" both land as "{name}"',
                    hint="the API returns both spellings; ask it for one of them",
                )
            sources[name] = field.name
            fields[name] = pa.field(name, declared.get(name) or _settled(field.type))
        for name, kind in declared.items():
            fields.setdefault(name, pa.field(name, kind))
        self.schema = pa.schema(list(fields.values()))

    def batch(self, records: pa.StructArray, where: str) -> pa.RecordBatch:
        columns: dict[str, tuple[str, pa.Array]] = {}
        for field, values in zip(records.type, records.flatten(), strict=True):
            name = snake_case(field.name)
            if name in columns:
                raise SourceError(
                    f'{where}: fields "{columns[name][0]}" and "{field.name}" both land as "{name}"'
                )
            if self.schema.get_field_index(name) < 0:
                raise _new_field(where, field.name, top_level=True)
            columns[name] = (field.name, values)
        arrays = [
            _conform(columns[f.name][1], f.type, columns[f.name][0], where)
            if f.name in columns
            else pa.nulls(len(records), f.type)
            for f in self.schema
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _conform(values: pa.Array, target: pa.DataType, path: str, where: str) -> pa.Array:
    """``values`` as ``target``: nested fields matched by name, the rest cast without loss."""
    kind = values.type
    if kind == target:
        return values
    if pa.types.is_null(kind):
        return pa.nulls(len(values), target)
    if pa.types.is_struct(kind) and pa.types.is_struct(target):
        children = dict(zip([f.name for f in kind], values.flatten(), strict=True))
        for name in children:
            if target.get_field_index(name) < 0:
                raise _new_field(where, f"{path}.{name}", top_level=False)
        arrays = [
            _conform(children[f.name], f.type, f"{path}.{f.name}", where)
            if f.name in children
            else pa.nulls(len(values), f.type)
            for f in target
        ]
        return pa.StructArray.from_arrays(arrays, fields=list(target), mask=values.is_null())
    if pa.types.is_list(kind) and pa.types.is_list(target):
        items = _conform(values.values, target.value_type, f"{path}[]", where)
        return pa.ListArray.from_arrays(values.offsets, items, type=target, mask=values.is_null())
    try:
        return values.cast(target, safe=True)
    except _ARROW_ERRORS as err:
        raise SourceError(
            f'{where}: field "{path}" has {kind} values that do not fit its type {target}: {err}',
            hint="declare the type under the table's types:, e.g. types: "
            f"{{{snake_case(path.split('.')[0])}: {'double' if pa.types.is_floating(kind) else 'string'}}}",
        ) from None


def _new_field(where: str, path: str, *, top_level: bool) -> SourceError:
    return SourceError(
        f'{where}: field "{path}" is not on the first page, so the schema has no place for it',
        hint=f"declare it under the table's types:, e.g. types: {{{snake_case(path)}: string}}"
        if top_level
        else "the first page must show every nested field; ask for a larger first page if the API allows",
    )


def at_or_after(batch: pa.RecordBatch, cursor: str, since: Any, what: str) -> pa.RecordBatch:
    """Only the rows whose cursor is at or past ``since``, whatever the API did with the bound."""
    values = batch.column(cursor)
    try:
        if pa.types.is_string(values.type) and isinstance(since, datetime | date):
            # ISO 8601 text against a date or timestamp bound: compare as timestamps, not text.
            tz = "UTC" if isinstance(since, datetime) and since.tzinfo is not None else None
            values = values.cast(pa.timestamp("us", tz=tz))
        bound = pa.scalar(since).cast(values.type)
        keep = pc.greater_equal(values, bound)
    except _ARROW_ERRORS as err:
        raise SourceError(
            f'{what}: cannot compare the incremental cursor "{cursor}" ({values.type}) with {since!r}: {err}',
            hint=f"declare the cursor's type under the table's types:, e.g. types: {{{cursor}: timestamp}}",
        ) from None
    return batch.filter(keep)
