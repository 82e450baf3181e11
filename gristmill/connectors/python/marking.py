"""Python functions as sources: ``@source`` marks the functions a ``kind: python`` source may call.

Users import it as ``gristmill.sources.source``; here it has another name, because ``source`` is
this package's submodule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import pyarrow as pa

MARK = "__gristmill_source__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SourceFunction:
    """What ``@source`` records on a function."""

    schema: pa.Schema | None = None


@overload
def source_decorator(function: F, /) -> F: ...


@overload
def source_decorator(*, schema: pa.Schema | Mapping[str, pa.DataType] | None = None) -> Callable[[F], F]: ...


def source_decorator(
    function: F | None = None, /, *, schema: pa.Schema | Mapping[str, pa.DataType] | None = None
) -> F | Callable[[F], F]:
    """Mark a function as a source table; it yields (or returns) rows.

    Rows are dicts, lists of dicts, Arrow record batches or tables, or pandas / polars data frames.
    ``schema`` declares the columns and types up front, so planning need not call the function
    and every chunk is cast to it. The function itself is returned unchanged."""
    declared = None if schema is None else schema if isinstance(schema, pa.Schema) else pa.schema(schema)

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@source marks functions, not {type(fn).__name__}")
        setattr(fn, MARK, SourceFunction(declared))
        return fn

    return mark if function is None else mark(function)


def marked(obj: object) -> SourceFunction | None:
    """The ``@source`` record of ``obj``, if it has one."""
    found = getattr(obj, MARK, None) if callable(obj) else None
    return found if isinstance(found, SourceFunction) else None
