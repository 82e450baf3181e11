"""Schema contracts: compare what a source delivers with what the table holds, and decide.

Every difference becomes a named change; the contract says which changes apply, which fail the
load and which rows are set aside. Nothing is coerced silently."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gristmill.sql.paths import LIST

ChangeKind = Literal["new_column", "missing_column", "widened", "type_drift"]

_INTEGERS = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"]
_UNSIGNED = ["UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]
_DIGITS = {
    "TINYINT": 3,
    "SMALLINT": 5,
    "INTEGER": 10,
    "BIGINT": 19,
    "HUGEINT": 39,
    "UTINYINT": 3,
    "USMALLINT": 5,
    "UINTEGER": 10,
    "UBIGINT": 20,
    "UHUGEINT": 39,
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class SchemaChange:
    kind: ChangeKind
    column: str
    old: str | None = None
    new: str | None = None
    field: tuple[str, ...] = ()
    """For a change inside a nested column: the path below ``column``, struct field names and
    ``[]`` for the elements of a list (``items[].sku`` is ``("[]", "sku")``)."""

    @property
    def path(self) -> str:
        """The column, or the nested field, as a user writes it: ``meta.extra``, ``items[].sku``."""
        return self.column + "".join("[]" if step == LIST else f".{step}" for step in self.field)

    def __str__(self) -> str:
        what = "field" if self.field else "column"
        if self.kind == "new_column":
            return f'new {what} "{self.path}" {self.new}'
        if self.kind == "missing_column":
            return f'{what} "{self.path}" is no longer delivered (kept, filled with NULL)'
        if self.kind == "widened":
            return f'{what} "{self.path}" widened {self.old} -> {self.new}'
        return f'type drift in {what} "{self.path}": {self.old} -> {self.new}'


@dataclass(frozen=True)
class NestedType:
    """A DuckDB type string taken apart where it nests: a STRUCT's fields or a list's element;
    anything else (a leaf, a MAP, a fixed-size array) is kept as its text."""

    text: str
    fields: tuple[tuple[str, NestedType], ...] | None = None
    element: NestedType | None = None

    def render(self) -> str:
        if self.fields is not None:
            inner = ", ".join(f"{_quote(name)} {kind.render()}" for name, kind in self.fields)
            return f"STRUCT({inner})"
        if self.element is not None:
            return self.element.render() + "[]"
        return self.text


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(inner: str) -> list[str]:
    """Split at the commas that are not inside parentheses or double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(inner):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_type(text: str) -> NestedType:
    """Parse a type as DuckDB prints it (``STRUCT(a BIGINT, "b c" VARCHAR[])[]``)."""
    text = text.strip()
    if text.endswith("[]"):
        return NestedType(text, element=parse_type(text[:-2]))
    if text.upper().startswith("STRUCT(") and text.endswith(")"):
        fields = []
        for part in _split(text[len("STRUCT(") : -1]):
            if part.startswith('"'):
                end = 1
                while end < len(part):  # a doubled quote is an escaped one
                    if part[end] == '"' and part[end + 1 : end + 2] != '"':
                        break
                    end += 2 if part[end] == '"' else 1
                name, rest = part[1:end].replace('""', '"'), part[end + 1 :]
            else:
                name, _, rest = part.partition(" ")
            fields.append((name, parse_type(rest)))
        return NestedType(text, fields=tuple(fields))
    return NestedType(text)


def fits(value_type: str, column_type: str) -> bool:
    """Can every value of ``value_type`` be stored in ``column_type`` without loss?"""
    a, b = value_type.upper(), column_type.upper()
    if a == b or a == '"NULL"' or a == "NULL":
        return True
    if a == "JSON" and b == "VARCHAR":  # JSON is text (an empty list's elements are typed JSON)
        return True
    if b == "JSON" and (a in _INTEGERS or a in _UNSIGNED or a in ("DOUBLE", "FLOAT", "BOOLEAN")):
        return True  # numbers and booleans are JSON values as they are
    if a in _INTEGERS and b in _INTEGERS:
        return _INTEGERS.index(a) <= _INTEGERS.index(b)
    if a in _UNSIGNED and b in _INTEGERS:
        return _DIGITS[a] < _DIGITS[b]
    if a in _UNSIGNED and b in _UNSIGNED:
        return _UNSIGNED.index(a) <= _UNSIGNED.index(b)
    if (a in _INTEGERS or a in _UNSIGNED) and b == "DOUBLE":
        return _DIGITS[a] <= 15
    if a == "FLOAT" and b == "DOUBLE":
        return True
    dec_a, dec_b = _DECIMAL.match(a), _DECIMAL.match(b)
    if dec_b and (a in _INTEGERS or a in _UNSIGNED):
        return int(dec_b.group(1)) - int(dec_b.group(2)) >= _DIGITS[a]
    if dec_a and dec_b:
        pa_, sa = int(dec_a.group(1)), int(dec_a.group(2))
        pb, sb = int(dec_b.group(1)), int(dec_b.group(2))
        return sb >= sa and pb - sb >= pa_ - sa
    return a == "DATE" and b in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE")


def compare(
    existing: Sequence[tuple[str, str]], incoming: Sequence[tuple[str, str]], *, nested: bool = False
) -> list[SchemaChange]:
    """The changes that turn the table's schema into one that holds the incoming rows. With
    ``nested``, STRUCT and list columns are compared field by field, so a new field inside an
    object is a new (nested) column, not drift of the whole column."""
    held = dict(existing)
    delivered = dict(incoming)
    changes: list[SchemaChange] = []
    for name, new in incoming:
        old = held.get(name)
        if old is None:
            changes.append(SchemaChange("new_column", name, None, new))
        elif nested:
            changes.extend(_nested_changes(name, (), parse_type(old), parse_type(new)))
        elif fits(new, old) and not _json_into_text(new, old, ()):
            continue
        elif fits(old, new) and "JSON" not in (old.upper(), new.upper()):  # see _nested_changes
            changes.append(SchemaChange("widened", name, old, new))
        else:
            changes.append(SchemaChange("type_drift", name, old, new))
    changes.extend(
        SchemaChange("missing_column", name, old, None)
        for name, old in existing
        if name not in delivered and not name.startswith("_gm_")
    )
    return changes


def _json_into_text(value_type: str, column_type: str, path: tuple[str, ...]) -> bool:
    """JSON arriving for a text column or field: its strings would land with their quotes, so the
    values are checked one by one (type drift). Only a list's elements hold JSON text as it is
    (lists of JSON values land as VARCHAR[]; an empty list's elements are typed JSON)."""
    return value_type.upper() == "JSON" and column_type.upper() == "VARCHAR" and path[-1:] != (LIST,)


def _nested_changes(
    column: str, path: tuple[str, ...], old: NestedType, new: NestedType
) -> list[SchemaChange]:
    if old.fields is not None and new.fields is not None:
        held = dict(old.fields)
        out: list[SchemaChange] = []
        for name, kind in new.fields:
            if name not in held:
                out.append(
                    SchemaChange("new_column", column, None, kind.text or kind.render(), (*path, name))
                )
            else:
                out.extend(_nested_changes(column, (*path, name), held[name], kind))
        delivered = {name for name, _ in new.fields}
        out.extend(
            SchemaChange("missing_column", column, kind.text or kind.render(), None, (*path, name))
            for name, kind in old.fields
            if name not in delivered
        )
        return out
    if old.element is not None and new.element is not None:
        return _nested_changes(column, (*path, LIST), old.element, new.element)
    a, b = old.text or old.render(), new.text or new.render()  # leaves compare as DuckDB prints them
    if fits(b, a) and not _json_into_text(b, a, path):
        return []
    # Never to or from JSON: not every text is JSON, and a number column turning JSON is drift.
    widened = fits(a, b) and "JSON" not in (a.upper(), b.upper())
    return [SchemaChange("widened" if widened else "type_drift", column, a, b, path)]


def evolved(old: str, new: str) -> str:
    """The type a column evolves to so it holds both: struct fields added (at the end), leaves
    widened. Only for changes that ``compare`` found lossless."""
    return _merge(parse_type(old), parse_type(new)).render()


def _merge(old: NestedType, new: NestedType) -> NestedType:
    if old.fields is not None and new.fields is not None:
        incoming = dict(new.fields)
        fields = [
            (name, _merge(kind, incoming[name]) if name in incoming else kind) for name, kind in old.fields
        ]
        held = {name for name, _ in old.fields}
        fields.extend((name, kind) for name, kind in new.fields if name not in held)
        return NestedType("", fields=tuple(fields))
    if old.element is not None and new.element is not None:
        return NestedType("", element=_merge(old.element, new.element))
    return old if fits(new.text or new.render(), old.text or old.render()) else new


def kind_of(type_text: str) -> Literal["boolean", "number", "text", "json", "other"]:
    """The family a leaf type belongs to, for deciding whether one value can stand for another:
    a boolean is never a number (``true`` is not ``1``), text can spell any value."""
    upper = type_text.upper()
    if upper == "BOOLEAN":
        return "boolean"
    if (
        upper in _INTEGERS
        or upper in _UNSIGNED
        or upper in ("DOUBLE", "FLOAT", "REAL")
        or _DECIMAL.match(upper)
    ):
        return "number"
    if upper == "VARCHAR":
        return "text"
    if upper == "JSON":
        return "json"
    return "other"


def may_fit(value_type: str, column_type: str) -> bool:
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
