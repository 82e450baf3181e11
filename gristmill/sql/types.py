"""Column types at the engine boundary: sqlglot ``DataType`` nodes, read from and written for a
dialect here.

An engine prints its own types (``describe``, ``columns``); :func:`parse` reads that text into a
``DataType`` and remembers the engine's own spelling, so a type rendered back for the same
dialect is exactly what the engine printed (messages and schema comparisons stay as users know
them), while another dialect gets sqlglot's spelling of the neutral node."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import sqlglot
from sqlglot import exp

from gristmill.sql.render import render as render_statement

_SPELLING = "gristmill_spelling"
"""Meta key holding (dialect, text): how the engine of that dialect printed the type."""


@lru_cache(maxsize=4096)
def parse(text: str, dialect: str) -> exp.DataType:
    """The type ``text`` spelled in ``dialect``. A type sqlglot does not know (an engine's own)
    becomes a user-defined type holding the text, so nothing an engine prints is refused.

    Cached, and so shared: treat the result as immutable and copy it before putting it in a
    statement. A lake's few distinct type texts are parsed once instead of once per column
    (``columns()`` lists every column of every table: ~80 us a parse)."""
    try:
        dtype = exp.DataType.build(text, dialect=dialect)
    except (sqlglot.ParseError, ValueError):
        dtype = exp.DataType.build(text, udt=True)
    dtype.meta[_SPELLING] = (dialect, text)
    printer = _PRINTERS.get(dialect)
    if printer is not None and dtype.expressions:
        # The types nested inside (struct fields, list elements) as the engine prints them, for
        # messages about a field (``new field "meta.extra" VARCHAR``).
        for node in dtype.find_all(exp.DataType):
            if node is not dtype:
                node.meta[_SPELLING] = (dialect, printer(node))
    return dtype


@lru_cache(maxsize=256)
def build(text: str) -> exp.DataType:
    """A type written in the platform's own code (bookkeeping tables): standard SQL names.
    Cached and shared like :func:`parse`."""
    return exp.DataType.build(text)


def render(dtype: exp.DataType, dialect: str) -> str:
    """``dtype`` as ``dialect`` spells it: the engine's own text when it was read from that
    dialect (a field's type inside a struct too, see :func:`parse`), else the rendering of the
    neutral node."""
    spelled = dtype.meta.get(_SPELLING)
    if spelled and spelled[0] == dialect:
        return str(spelled[1])
    return render_statement(dtype, dialect)


_T = exp.DataType.Type
_DUCKDB_NAMES = {
    _T.INT: "INTEGER",
    _T.TEXT: "VARCHAR",
    _T.VARCHAR: "VARCHAR",
    _T.INT128: "HUGEINT",
    _T.UINT128: "UHUGEINT",
    _T.FLOAT: "FLOAT",
    _T.TIMESTAMPTZ: "TIMESTAMP WITH TIME ZONE",
    _T.TIMETZ: "TIME WITH TIME ZONE",
}
"""Where DuckDB prints a type otherwise than sqlglot's DuckDB generator writes it (both read
back as the same type)."""


def _duckdb_printed(dtype: exp.DataType) -> str:
    """``dtype`` as DuckDB prints it (``DESCRIBE``, ``typeof``): the text users see in messages
    about a field inside a struct (``new field "meta.extra" VARCHAR``), which carries no spelling
    of its own. sqlglot's generator spells some types otherwise (``TEXT``, ``INT``) and compiled
    generators cannot be subclassed, hence this walk over the nodes that hold others."""
    kind = dtype.this
    if kind in (_T.STRUCT, _T.UNION) and all(isinstance(e, exp.ColumnDef) for e in dtype.expressions):
        fields = ", ".join(
            f"{render_statement(e.this, 'duckdb')} {_duckdb_printed(e.args['kind'])}"
            for e in dtype.expressions
        )
        return f"{kind.value}({fields})"
    if kind in (_T.ARRAY, _T.LIST) and len(dtype.expressions) == 1:
        size = "".join(v.sql() for v in dtype.args.get("values") or ())
        return f"{_duckdb_printed(dtype.expressions[0])}[{size}]"
    if kind == _T.MAP and len(dtype.expressions) == 2:
        return "MAP(" + ", ".join(_duckdb_printed(e) for e in dtype.expressions) + ")"
    if kind == _T.DECIMAL and dtype.expressions:
        return "DECIMAL(" + ",".join(e.sql() for e in dtype.expressions) + ")"
    if kind in _DUCKDB_NAMES and not dtype.expressions:
        return _DUCKDB_NAMES[kind]
    return render_statement(dtype, "duckdb")


_PRINTERS: dict[str, Callable[[exp.DataType], str]] = {"duckdb": _duckdb_printed}
"""How an engine prints a type, by dialect, where it differs from sqlglot's generator."""


def columns(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, exp.DataType]]:
    """(name, type text) pairs of the platform's own tables as (name, DataType) columns."""
    return [(name, build(text)) for name, text in pairs]


def texts(columns: Sequence[tuple[str, exp.DataType]], dialect: str) -> list[tuple[str, str]]:
    """(name, type text) pairs in ``dialect``: for code that compares or shows types as text."""
    return [(name, render(dtype, dialect)) for name, dtype in columns]
