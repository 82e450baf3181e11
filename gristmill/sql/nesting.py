"""Reshape nested records in SQL: keep STRUCT/LIST columns, turn them into JSON, or split lists
into child tables linked to their parent row. Built from the Arrow schema of the staged rows;
the engine does the work, no Python touches a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill._util.naming import snake_case
from gristmill.sql.functions import (
    list_positions,
    list_transform,
    md5,
    merge_patch,
    struct_field,
    to_json,
    unnest,
)

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

ROW_ID = "_gm_row_id"
PARENT_ID = "_gm_parent_id"
LIST_INDEX = "_gm_list_index"
ELEMENT = "_gm_element"


def is_nested(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_struct(dtype)
        or pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
        or pa.types.is_map(dtype)
    )


def is_list(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype)
    )


def _json(value: exp.Expr) -> exp.Expr:
    return to_json(value)


def _field(value: exp.Expr, name: str) -> exp.Expr:
    return struct_field(value, name)


@dataclass
class ChildList:
    """A list found while flattening: it becomes the child table ``<parent>__<name>``."""

    name: str
    value: exp.Expr
    element: pa.DataType
    depth: int


@dataclass
class Flattened:
    columns: list[exp.Expr] = field(default_factory=list)
    lists: list[ChildList] = field(default_factory=list)


def flatten(
    value: exp.Expr,
    name: str,
    dtype: pa.DataType,
    depth: int,
    max_depth: int | None,
    out: Flattened,
    *,
    split_lists: bool,
) -> None:
    """Project ``value`` into columns: structs become ``name__field`` columns, lists (when
    ``split_lists``) are collected for child tables, anything deeper than ``max_depth`` is JSON."""
    import pyarrow as pa

    too_deep = max_depth is not None and depth >= max_depth
    if pa.types.is_struct(dtype) and not too_deep:
        for child in dtype:
            flatten(
                _field(value, child.name),
                f"{name}__{snake_case(child.name)}",
                child.type,
                depth + 1,
                max_depth,
                out,
                split_lists=split_lists,
            )
    elif is_list(dtype) and split_lists and not too_deep:
        out.lists.append(ChildList(name, value, dtype.value_type, depth + 1))
    elif is_nested(dtype) and (too_deep or pa.types.is_map(dtype)):
        out.columns.append(exp.alias_(_json(value), name, quoted=True))
    else:
        out.columns.append(exp.alias_(value, name, quoted=True))


def flatten_element(element: pa.DataType, max_depth: int | None, depth: int) -> Flattened:
    """Columns of a child table from its list element: a struct's fields, or ``value``."""
    import pyarrow as pa

    out = Flattened()
    value = exp.column(ELEMENT, quoted=True)
    if pa.types.is_struct(element) and not (max_depth is not None and depth >= max_depth):
        for child in element:
            flatten(
                _field(value, child.name),
                snake_case(child.name),
                child.type,
                depth + 1,
                max_depth,
                out,
                split_lists=True,
            )
    else:
        flatten(value, "value", element, depth, max_depth, out, split_lists=True)
    return out


def keep_nested(schema: pa.Schema, max_depth: int | None, *, as_json: bool) -> list[exp.Expr]:
    """Columns for the ``struct`` and ``json`` modes: nested values kept, or JSON text, past a depth."""
    columns: list[exp.Expr] = []
    for column in schema:
        value = exp.column(column.name, quoted=True)
        if is_nested(column.type) and (
            as_json or _depth(column.type) > (max_depth if max_depth is not None else 1 << 30)
        ):
            columns.append(exp.alias_(_json(value), column.name, quoted=True))
        else:
            columns.append(exp.alias_(value, column.name, quoted=True))
    return columns


def _depth(dtype: pa.DataType) -> int:
    import pyarrow as pa

    if pa.types.is_struct(dtype):
        return 1 + max((_depth(f.type) for f in dtype), default=0)
    if is_list(dtype) or pa.types.is_map(dtype):
        inner = dtype.value_type if not pa.types.is_map(dtype) else dtype.item_type
        return 1 + _depth(inner)
    return 0


def row_uuid(*parts: exp.Expr) -> exp.Expr:
    """A row id: the MD5 of text that names the row unambiguously, as a UUID. 128 bits are exact
    in every storage (Parquet writes HUGEINT as a double, which rounded the old numeric ids) and
    make a collision practically impossible; the parts must never be NULL."""
    text: exp.Expr = parts[0]
    for part in parts[1:]:
        text = exp.DPipe(this=text, expression=part, safe=True)
    return exp.cast(md5(text), "UUID")


def unnest_list(source: exp.Table | exp.Subquery, child: ChildList, ordinal: str) -> exp.Select:
    """One row per list element: its parent's row id, its index and the element itself, and the
    root record's arrival number (``ordinal``, so a contract error names the record). The
    element's id is derived from its parent's id, its list and its index, so it is as stable
    as the parent's and unique in the whole load."""
    index = list_positions(child.value)
    parent, position = exp.column(PARENT_ID, quoted=True), exp.column(LIST_INDEX, quoted=True)
    row_id = row_uuid(
        exp.cast(parent, "VARCHAR"),
        exp.Literal.string(f"/{child.name}/"),
        exp.cast(position, "VARCHAR"),
    )
    inner = exp.select(
        exp.alias_(exp.column(ROW_ID, quoted=True), PARENT_ID, quoted=True),
        exp.alias_(unnest(child.value), ELEMENT, quoted=True),
        exp.alias_(index, LIST_INDEX, quoted=True),
        exp.column(ordinal, quoted=True),
    ).from_(source)
    return exp.select(
        exp.alias_(row_id, ROW_ID, quoted=True),
        exp.column(PARENT_ID, quoted=True),
        exp.column(LIST_INDEX, quoted=True),
        exp.column(ELEMENT, quoted=True),
        exp.column(ordinal, quoted=True),
    ).from_(inner.subquery("p"))


def content_digest(schema: pa.Schema, columns: list[str]) -> exp.Expr:
    """The MD5 of a row's values as JSON, with every NULL object field left out at any depth (in
    lists too) and fields in name order, so neither a field the schema gained since the row was
    first read nor the order in which a load met the fields changes it."""
    fields = [
        exp.PropertyEQ(
            this=exp.to_identifier(name, quoted=True),
            expression=_canonical(exp.column(name, quoted=True), schema.field(name).type, 0),
        )
        for name in sorted(columns)
    ]
    return md5(_strip_nulls(exp.Struct(expressions=fields)))


def _strip_nulls(value: exp.Expr) -> exp.Expr:
    # RFC 7396 merge patch: applying an object to {} drops its NULL fields, in nested objects too
    return merge_patch(exp.Literal.string("{}"), to_json(value))


def _canonical(value: exp.Expr, dtype: pa.DataType, depth: int) -> exp.Expr:
    """``value`` with its objects' fields in name order, and the objects inside its lists made
    NULL-free JSON (a merge patch does not reach into arrays)."""
    import pyarrow as pa

    if pa.types.is_struct(dtype):
        rebuilt = exp.Struct(
            expressions=[
                exp.PropertyEQ(
                    this=exp.to_identifier(f.name, quoted=True),
                    expression=_canonical(_field(value, f.name), f.type, depth),
                )
                for f in sorted(dtype, key=lambda f: f.name)
            ]
        )
        # a NULL object stays NULL (and is left out), not an object of NULL fields
        return exp.case().when(exp.Is(this=value.copy(), expression=exp.null()), exp.null()).else_(rebuilt)
    if is_list(dtype) and is_nested(dtype.value_type):
        element = exp.to_identifier(f"_gm_e{depth}")
        body = _strip_nulls(_canonical(exp.column(element), dtype.value_type, depth + 1))
        return list_transform(value, element.name, body)
    return value
