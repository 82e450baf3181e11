"""Arrow helpers for sources that build record batches from Python values (documents, dicts):
one schema across batches, decimals wide enough for later batches, and the row that broke."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from gristmill._util.naming import snake_case
from gristmill.errors import SourceError

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
DECIMAL_SCALE = 9  # decimal places every decimal column keeps at least


def landed_names(names: list[str], what: str, hint: str) -> list[str]:
    """Column names in snake_case, refusing two that land under one name."""
    seen: dict[str, str] = {}
    for column in names:
        name = snake_case(column)
        if name in seen:
            raise SourceError(
                f'{what}: fields "{seen[name]}" and "{column}" both land as "{name}"', hint=hint
            )
        seen[name] = column
    return list(seen)


def widen(type_: pa.DataType) -> pa.DataType:
    """Decimals get the widest precision and at least 9 places, so later chunks fit (12.5, then 3.25)."""
    if pa.types.is_decimal128(type_):
        return pa.decimal128(38, max(type_.scale, DECIMAL_SCALE))
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(widen(f.type)) for f in type_])
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(widen(type_.value_type)))
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(widen(type_.value_type)))
    return type_


def extra_fields(type_: pa.DataType, target: pa.DataType, prefix: str) -> Iterator[str]:
    """Fields with values in ``type_`` that ``target`` lacks (a cast would drop them silently)."""
    if pa.types.is_struct(type_) and pa.types.is_struct(target):
        for field in type_:
            path = f"{prefix}.{field.name}" if prefix else field.name
            index = target.get_field_index(field.name)
            if index < 0:
                if not pa.types.is_null(field.type):
                    yield path
            else:
                yield from extra_fields(field.type, target.field(index).type, path)
    elif is_list(type_) and is_list(target):
        yield from extra_fields(type_.value_type, target.value_type, prefix + "[]")


def is_list(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_)


def fails(attempt: Callable[..., object], *args: Any) -> bool:
    try:
        attempt(*args)
    except ARROW_ERRORS:
        return True
    return False


def field_values(rows: list[Any], key: str) -> pa.Array:
    return pa.array([r.get(key) if isinstance(r, dict) else None for r in rows])


def first_failure(count: int, attempt: Callable[[int], object]) -> int:
    """The first row at which ``attempt(prefix_length)`` starts failing (only on an error path)."""
    low, high = 1, count
    while low < high:
        middle = (low + high) // 2
        if fails(attempt, middle):
            high = middle
        else:
            low = middle + 1
    return low - 1
