"""What Python model code imports: ``from gristmill import model``.

A Python model is ``models/<schema>/<name>.py`` with one ``@model`` function. The function receives
the tables it reads and returns a table; the decorator only records the options on it (the
project loader validates them, like a SQL model's header)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, overload

MARK = "__gristmill_model__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelFunction:
    """What ``@model`` records on a function: the assets it reads and its header options."""

    reads: tuple[Any, ...] = ()
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@overload
def model(function: F, /) -> F: ...


@overload
def model(*, reads: str | Sequence[str] = (), **options: Any) -> Callable[[F], F]: ...


def model(
    function: F | None = None, /, *, reads: str | Sequence[str] = (), **options: Any
) -> F | Callable[[F], F]:
    """Mark the function of a Python model.

    ``reads`` names the upstream assets (``"staging.customer"``); the function takes one parameter
    per asset, matched by name (``customer``) or else in order. A parameter's annotation picks what
    it receives: a DuckDB relation (the default), a ``pyarrow.Table``, a polars ``DataFrame`` or
    ``LazyFrame``, a pandas ``DataFrame``, or on a spark target a lazy ``pyspark.sql.DataFrame``
    (one more parameter annotated ``pyspark.sql.SparkSession`` receives the session). The other
    options are those of a SQL model's header:
    ``kind``, ``tags``, ``description``, ``owner``, ``columns``, ``checks``, ``key``, ``time``,
    ``interval``, ``start``, ``lookback``, ``schedule``, ``surrogate_key``, ``type2``, ``lookups``.
    The function itself is returned unchanged."""
    listed = tuple(reads) if isinstance(reads, list | tuple) else (reads,)
    mark_ = ModelFunction(listed, MappingProxyType(dict(options)))

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@model marks functions, not {type(fn).__name__}")
        setattr(fn, MARK, mark_)
        return fn

    return mark if function is None else mark(function)


def marked(obj: object) -> ModelFunction | None:
    """The ``@model`` record of ``obj``, if it has one."""
    found = getattr(obj, MARK, None) if callable(obj) else None
    return found if isinstance(found, ModelFunction) else None
