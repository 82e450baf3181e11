"""Schema contracts: compare what a source delivers with what the table holds, and decide.

Every difference becomes a named change; the contract says which changes apply, which fail the
load and which rows are set aside. Nothing is coerced silently.

Types are sqlglot ``DataType`` nodes as the engine described them, compared by family
(``exp.DataType.Type``), so DuckDB's ``INTEGER`` and PostgreSQL's ``integer`` decide alike; text
appears only in what a change says (rendered in the engine's dialect)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from gristmill.sql import types
from gristmill.sql.paths import LIST

ChangeKind = Literal["new_column", "missing_column", "widened", "type_drift"]
Column = tuple[str, exp.DataType]

_T = exp.DataType.Type
_INTEGERS = [_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.INT128]
_UNSIGNED = [_T.UTINYINT, _T.USMALLINT, _T.UINT, _T.UBIGINT, _T.UINT128]
_DIGITS = {
    _T.TINYINT: 3,
    _T.SMALLINT: 5,
    _T.INT: 10,
    _T.BIGINT: 19,
    _T.INT128: 39,
    _T.UTINYINT: 3,
    _T.USMALLINT: 5,
    _T.UINT: 10,
    _T.UBIGINT: 20,
    _T.UINT128: 39,
}
_FLOATS = (_T.FLOAT, _T.DOUBLE)
_TEXT = (_T.TEXT, _T.VARCHAR, _T.NVARCHAR)
"""Text of any length: DuckDB's VARCHAR (read as TEXT), PostgreSQL's text and character varying."""
_JSON = (_T.JSON, _T.JSONB)
_TIMESTAMPS = (_T.TIMESTAMP, _T.TIMESTAMPNTZ, _T.TIMESTAMP_NS, _T.TIMESTAMPTZ)
"""What a DATE widens to: every date is midnight of that day (not TIMESTAMP_S/_MS: as before)."""
_ALIASES = {_T.TIMESTAMPNTZ: _T.TIMESTAMP, _T.DATETIME: _T.TIMESTAMP}
"""Two names of one type (DuckDB's TIMESTAMP reads as TIMESTAMPNTZ, PostgreSQL's as TIMESTAMP)."""


@dataclass(frozen=True)
class SchemaChange:
    kind: ChangeKind
    column: str
    old: exp.DataType | None = None
    new: exp.DataType | None = None
    field: tuple[str, ...] = ()
    """For a change inside a nested column: the path below ``column``, struct field names and
    ``[]`` for the elements of a list (``items[].sku`` is ``("[]", "sku")``)."""
    dialect: str = ""
    """The engine's dialect, in which the types are spelled when the change is shown (``""``:
    sqlglot's own spelling)."""

    @property
    def path(self) -> str:
        """The column, or the nested field, as a user writes it: ``meta.extra``, ``items[].sku``."""
        return self.column + "".join("[]" if step == LIST else f".{step}" for step in self.field)

    @property
    def old_text(self) -> str:
        """The held type as the engine spells it (``None`` for a new column)."""
        return "None" if self.old is None else types.render(self.old, self.dialect)

    @property
    def new_text(self) -> str:
        """The arriving type as the engine spells it (``None`` for a missing column)."""
        return "None" if self.new is None else types.render(self.new, self.dialect)

    def __str__(self) -> str:
        what = "field" if self.field else "column"
        old, new = self.old_text, self.new_text
        if self.kind == "new_column":
            return f'new {what} "{self.path}" {new}'
        if self.kind == "missing_column":
            return f'{what} "{self.path}" is no longer delivered (kept, filled with NULL)'
        if self.kind == "widened":
            return f'{what} "{self.path}" widened {old} -> {new}'
        return f'type drift in {what} "{self.path}": {old} -> {new}'


def struct_fields(dtype: exp.DataType) -> list[Column] | None:
    """A STRUCT's (field, type) pairs in order; None for any other type."""
    if dtype.this != _T.STRUCT or not all(isinstance(e, exp.ColumnDef) for e in dtype.expressions):
        return None
    return [(e.name, e.args["kind"]) for e in dtype.expressions]


def list_element(dtype: exp.DataType) -> exp.DataType | None:
    """A list's element type; None for any other type (a fixed-size array, a MAP, a leaf), which
    compares whole."""
    if dtype.this not in (_T.ARRAY, _T.LIST) or dtype.args.get("values") or len(dtype.expressions) != 1:
        return None
    element = dtype.expressions[0]
    return element if isinstance(element, exp.DataType) else None


def _base(dtype: exp.DataType) -> exp.DType | str:
    kind = dtype.this
    if kind == _T.USERDEFINED:  # an engine's own type, by its name (DuckDB's "NULL")
        return str(dtype.args.get("kind") or "").strip('"').upper()
    return _ALIASES.get(kind, kind)


def _same(a: exp.DataType, b: exp.DataType) -> bool:
    """The same type (struct field names compared as DuckDB's printed text was: ignoring case)."""
    if a == b:
        return True
    if _base(a) == _base(b) and not a.expressions and not b.expressions:
        return True
    return a.sql().upper() == b.sql().upper()


def _is_null(dtype: exp.DataType) -> bool:
    return dtype.this == _T.NULL or _base(dtype) == "NULL"


def _is_json(dtype: exp.DataType) -> bool:
    return dtype.this in _JSON


def _length(dtype: exp.DataType) -> int | None:
    """The length limit of a text type (PostgreSQL's ``character varying(20)``); None: any."""
    sizes = [e for e in dtype.expressions if isinstance(e, exp.DataTypeParam)]
    return int(sizes[0].name) if sizes and sizes[0].name.isdigit() else None


def _is_text(dtype: exp.DataType) -> bool:
    return dtype.this in _TEXT


def _decimal(dtype: exp.DataType) -> tuple[int, int] | None:
    """(precision, scale) of a DECIMAL; (-1, -1) for one without limits (PostgreSQL's bare
    ``numeric``); None for any other type."""
    if dtype.this != _T.DECIMAL:
        return None
    params = [int(e.name) for e in dtype.expressions if e.name.isdigit()]
    if not params:
        return (-1, -1)
    return (params[0], params[1] if len(params) > 1 else 0)


def _integer(kind: exp.DType | str) -> bool:
    return kind in _INTEGERS or kind in _UNSIGNED


def fits(value_type: exp.DataType, column_type: exp.DataType) -> bool:
    """Can every value of ``value_type`` be stored in ``column_type`` without loss?"""
    if _same(value_type, column_type) or _is_null(value_type):
        return True
    a, b = _base(value_type), _base(column_type)
    if _is_text(column_type) and _length(column_type) is None:
        # text of any length, and JSON, which is text (an empty list's elements are typed JSON)
        return _is_text(value_type) or _is_json(value_type)
    if _is_text(value_type) and _is_text(column_type):
        within = _length(value_type)
        return within is not None and within <= (_length(column_type) or 0)
    if _is_json(column_type) and (_integer(a) or a in _FLOATS or a == _T.BOOLEAN):
        return True  # numbers and booleans are JSON values as they are
    if a in _INTEGERS and b in _INTEGERS:
        return _INTEGERS.index(a) <= _INTEGERS.index(b)
    if a in _UNSIGNED and b in _INTEGERS:
        return _DIGITS[a] < _DIGITS[b]
    if a in _UNSIGNED and b in _UNSIGNED:
        return _UNSIGNED.index(a) <= _UNSIGNED.index(b)
    if _integer(a) and b == _T.DOUBLE:
        return _DIGITS[a] <= 15  # type: ignore[index]
    if a == _T.FLOAT and b == _T.DOUBLE:
        return True
    held = _decimal(column_type)
    if held is not None and _integer(a):
        return held[0] < 0 or held[0] - held[1] >= _DIGITS[a]  # type: ignore[index]
    given = _decimal(value_type)
    if given is not None and held is not None:
        if held[0] < 0 or given[0] < 0:
            return held[0] < 0
        return held[1] >= given[1] and held[0] - held[1] >= given[0] - given[1]
    return a == _T.DATE and b in _TIMESTAMPS


def compare(
    existing: Sequence[Column], incoming: Sequence[Column], *, dialect: str, nested: bool = False
) -> list[SchemaChange]:
    """The changes that turn the table's schema into one that holds the incoming rows, their
    types spelled in ``dialect`` when shown. With ``nested``, STRUCT and list columns are
    compared field by field, so a new field inside an object is a new (nested) column, not
    drift of the whole column."""
    held = dict(existing)
    delivered = dict(incoming)
    changes: list[SchemaChange] = []
    for name, new in incoming:
        old = held.get(name)
        if old is None:
            changes.append(SchemaChange("new_column", name, None, new, dialect=dialect))
        elif nested:
            changes.extend(_nested_changes(name, (), old, new, dialect))
        else:
            changes.extend(_leaf_changes(name, (), old, new, dialect))
    changes.extend(
        SchemaChange("missing_column", name, old, None, dialect=dialect)
        for name, old in existing
        if name not in delivered and not name.startswith("_gm_")
    )
    return changes


def _json_into_text(value_type: exp.DataType, column_type: exp.DataType, path: tuple[str, ...]) -> bool:
    """JSON arriving for a text column or field: its strings would land with their quotes, so the
    values are checked one by one (type drift). Only a list's elements hold JSON text as it is
    (lists of JSON values land as VARCHAR[]; an empty list's elements are typed JSON)."""
    return _is_json(value_type) and _is_text(column_type) and path[-1:] != (LIST,)


def _leaf_changes(
    column: str, path: tuple[str, ...], old: exp.DataType, new: exp.DataType, dialect: str
) -> list[SchemaChange]:
    if fits(new, old) and not _json_into_text(new, old, path):
        return []
    # Never to or from JSON: not every text is JSON, and a number column turning JSON is drift.
    widened = fits(old, new) and not _is_json(old) and not _is_json(new)
    return [SchemaChange("widened" if widened else "type_drift", column, old, new, path, dialect)]


def _nested_changes(
    column: str, path: tuple[str, ...], old: exp.DataType, new: exp.DataType, dialect: str
) -> list[SchemaChange]:
    held_fields, new_fields = struct_fields(old), struct_fields(new)
    if held_fields is not None and new_fields is not None:
        held = dict(held_fields)
        out: list[SchemaChange] = []
        for name, kind in new_fields:
            if name not in held:
                out.append(SchemaChange("new_column", column, None, kind, (*path, name), dialect))
            else:
                out.extend(_nested_changes(column, (*path, name), held[name], kind, dialect))
        delivered = {name for name, _ in new_fields}
        out.extend(
            SchemaChange("missing_column", column, kind, None, (*path, name), dialect)
            for name, kind in held_fields
            if name not in delivered
        )
        return out
    held_element, new_element = list_element(old), list_element(new)
    if held_element is not None and new_element is not None:
        return _nested_changes(column, (*path, LIST), held_element, new_element, dialect)
    return _leaf_changes(column, path, old, new, dialect)


def evolved(old: exp.DataType, new: exp.DataType) -> exp.DataType:
    """The type a column evolves to so it holds both: struct fields added (at the end), leaves
    widened. Only for changes that ``compare`` found lossless. A new node, free to put in a
    statement."""
    held_fields, new_fields = struct_fields(old), struct_fields(new)
    if held_fields is not None and new_fields is not None:
        incoming = dict(new_fields)
        merged = [
            (name, evolved(kind, incoming[name]) if name in incoming else kind.copy())
            for name, kind in held_fields
        ]
        held = {name for name, _ in held_fields}
        merged.extend((name, kind.copy()) for name, kind in new_fields if name not in held)
        return exp.DataType(
            this=_T.STRUCT,
            expressions=[exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=k) for n, k in merged],
            nested=True,
        )
    held_element, new_element = list_element(old), list_element(new)
    if held_element is not None and new_element is not None:
        return exp.DataType(this=old.this, expressions=[evolved(held_element, new_element)], nested=True)
    return (old if fits(new, old) else new).copy()


def kind_of(dtype: exp.DataType) -> Literal["boolean", "number", "text", "json", "other"]:
    """The family a leaf type belongs to, for deciding whether one value can stand for another:
    a boolean is never a number (``true`` is not ``1``), text can spell any value."""
    kind = dtype.this
    if kind == _T.BOOLEAN:
        return "boolean"
    if _integer(kind) or kind in _FLOATS or kind == _T.DECIMAL:
        return "number"
    if _is_text(dtype):
        return "text"
    if _is_json(dtype):
        return "json"
    return "other"


def is_integer(dtype: exp.DataType) -> bool:
    """A whole-number type, signed or not, of any width."""
    return _integer(dtype.this)


def may_fit(value_type: exp.DataType, column_type: exp.DataType) -> bool:
    """Can some value of ``value_type`` stand in a ``column_type`` column unchanged? (Which values
    do is decided per value: the value must read back identically.) Booleans and numbers never
    stand for each other, and text never lands in a JSON column, where it would be parsed (the
    text ``true`` would become the boolean)."""
    value, column = kind_of(value_type), kind_of(column_type)
    if value == "json":  # a mix of kinds: each value decides by its own JSON type
        return True
    if column == "json":
        return value != "text"
    if "boolean" in (value, column):
        return value == column or "text" in (value, column)
    return True
