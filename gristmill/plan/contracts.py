"""Schema contracts: compare what a source delivers with what the table holds, and decide.

Every difference becomes a named change; the contract says which changes apply, which fail the
load and which rows are set aside. Nothing is coerced silently."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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

    def __str__(self) -> str:
        if self.kind == "new_column":
            return f'new column "{self.column}" {self.new}'
        if self.kind == "missing_column":
            return f'column "{self.column}" is no longer delivered (kept, filled with NULL)'
        if self.kind == "widened":
            return f'column "{self.column}" widened {self.old} -> {self.new}'
        return f'type drift in column "{self.column}": {self.old} -> {self.new}'


def fits(value_type: str, column_type: str) -> bool:
    """Can every value of ``value_type`` be stored in ``column_type`` without loss?"""
    a, b = value_type.upper(), column_type.upper()
    if a == b or a == '"NULL"' or a == "NULL":
        return True
    if a == "JSON" and b == "VARCHAR":  # JSON is text (an empty list's elements are typed JSON)
        return True
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


def compare(existing: Sequence[tuple[str, str]], incoming: Sequence[tuple[str, str]]) -> list[SchemaChange]:
    """The changes that turn the table's schema into one that holds the incoming rows."""
    held = dict(existing)
    delivered = dict(incoming)
    changes: list[SchemaChange] = []
    for name, new in incoming:
        old = held.get(name)
        if old is None:
            changes.append(SchemaChange("new_column", name, None, new))
        elif fits(new, old):
            continue
        elif fits(old, new):
            changes.append(SchemaChange("widened", name, old, new))
        else:
            changes.append(SchemaChange("type_drift", name, old, new))
    changes.extend(
        SchemaChange("missing_column", name, old, None)
        for name, old in existing
        if name not in delivered and not name.startswith("_gm_")
    )
    return changes
