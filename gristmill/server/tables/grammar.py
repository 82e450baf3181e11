"""The query-string grammar of ``GET /api/v1/tables/{schema}/{name}``, PostgREST style, into sqlglot.

``?amount=gt.10&country=in.(DE,FR)&name=ilike.*rock*&or=(a.eq.1,b.lt.2)&note=not.is.null``:
every filter names a column of the table (checked) and every value is parsed for that column's
type (checked) and built as a sqlglot literal, so no text of the request reaches SQL as SQL.
Errors are ``BadParameter`` naming the parameter; the router answers them with HTTP 400.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from sqlglot import exp

from gristmill.server.reading import ServedColumn, ServedRelation

RESERVED = frozenset({"select", "order", "limit", "cursor", "count", "as_of", "or", "and"})
"""Query parameters that are not column filters."""

_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "neq": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
}
OPERATORS = (*_COMPARISONS, "like", "ilike", "in", "is")
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
_INTEGERS |= {"UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOATS = {"FLOAT", "DOUBLE", "REAL"}
_TEXTS = {"VARCHAR", "TEXT", "STRING", "UUID", "CHAR", "BPCHAR"}


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def family(column: ServedColumn) -> str:
    """integer, decimal, float, boolean, date, timestamp, time, text or other (lists, structs …)."""
    text = column.type.upper()
    if "[" in text or text.startswith(("STRUCT", "MAP", "UNION")):
        return "other"
    base = text.split("(", 1)[0].strip()
    if base in _INTEGERS:
        return "integer"
    if base in {"DECIMAL", "NUMERIC"}:
        return "decimal"
    if base in _FLOATS:
        return "float"
    if base in {"BOOLEAN", "BOOL"}:
        return "boolean"
    if base == "DATE":
        return "date"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    if base.startswith("TIME"):
        return "time"
    if base in _TEXTS:
        return "text"
    return "other"


def literal(column: ServedColumn, text: str, parameter: str) -> exp.Expr:
    """``text`` as a literal of ``column``'s type, or BadParameter saying what was expected."""
    kind = family(column)
    try:
        if kind == "integer":
            return exp.Literal.number(str(int(text, 10)))
        if kind == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError(text)
            return exp.Literal.number(str(number))
        if kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return exp.Literal.number(repr(value))
        if kind == "boolean":
            if text.lower() not in {"true", "false"}:
                raise ValueError(text)
            return exp.Boolean(this=text.lower() == "true")
        parsers: dict[str, Callable[[str], date | time | datetime]] = {
            "date": date.fromisoformat,
            "time": time.fromisoformat,
            "timestamp": _timestamp,
        }
        if kind in parsers:
            parsed = parsers[kind](text)
            return exp.cast(
                exp.Literal.string(parsed.isoformat()), exp.DataType.build(column.type, dialect="duckdb")
            )
    except (ValueError, InvalidOperation):
        raise BadParameter(
            parameter, f"{text!r} is not a valid {column.type} for column {column.name!r}"
        ) from None
    if kind == "other":
        raise BadParameter(
            parameter, f"column {column.name!r} ({column.type}) can only be filtered with is.null"
        )
    return exp.Literal.string(text)


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def column_of(relation: ServedRelation, name: str, parameter: str) -> ServedColumn:
    found = relation.column(name)
    if found is None:
        names = ", ".join(c.name for c in relation.columns)
        raise BadParameter(parameter, f"{relation.full_name} has no column {name!r} (it has: {names})")
    return found


def condition(relation: ServedRelation, name: str, spec: str, parameter: str) -> exp.Expr:
    """One filter, ``col=[not.]op.value``."""
    column = column_of(relation, name, parameter)
    negate = spec.startswith("not.")
    if negate:
        spec = spec[4:]
    op, dot, value = spec.partition(".")
    if not dot or op not in OPERATORS:
        raise BadParameter(
            parameter,
            f"{spec!r} is not operator.value; operators: {', '.join(OPERATORS)} (and not. before one)",
        )
    target = exp.column(column.name, quoted=True)
    built: exp.Expr
    if op in _COMPARISONS:
        built = _COMPARISONS[op](this=target, expression=literal(column, value, parameter))
    elif op in {"like", "ilike"}:
        if family(column) != "text":
            raise BadParameter(parameter, f"{op} needs a text column; {column.name!r} is {column.type}")
        pattern = exp.Literal.string(value.replace("*", "%"))
        built = (
            exp.Like(this=target, expression=pattern)
            if op == "like"
            else exp.ILike(this=target, expression=pattern)
        )
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise BadParameter(parameter, f"in takes a list in parentheses, e.g. in.(DE,FR), not {value!r}")
        items = _split(value[1:-1], parameter)
        built = target.isin(*(literal(column, item, parameter) for item in items))
    else:
        checks: dict[str, exp.Expr] = {"null": exp.null(), "true": exp.true(), "false": exp.false()}
        if value.lower() not in checks:
            raise BadParameter(parameter, f"is takes null, true or false, not {value!r}")
        built = exp.Is(this=target, expression=checks[value.lower()])
    return exp.Not(this=exp.paren(built)) if negate else built


def _split(text: str, parameter: str) -> list[str]:
    """Comma-separated values, double quotes around a value holding a comma (CSV's rules)."""
    try:
        rows = list(csv.reader([text], skipinitialspace=False, strict=True))
    except csv.Error as err:
        raise BadParameter(parameter, f"cannot read the list {text!r}: {err}") from None
    return rows[0] if rows else []


def logical(relation: ServedRelation, word: str, text: str, parameter: str) -> exp.Expr:
    """``or=(a.eq.1,b.lt.2,and(c.gt.0,d.is.null))``: nested groups of ``col.op.value``."""
    if not (text.startswith("(") and text.endswith(")")):
        raise BadParameter(parameter, f"{word} takes a list in parentheses, e.g. {word}=(a.eq.1,b.lt.2)")
    parts = [_item(relation, item, parameter) for item in _top_level(text[1:-1], parameter)]
    if not parts:
        raise BadParameter(parameter, f"{word}=() has no conditions")
    return exp.paren(exp.or_(*parts) if word == "or" else exp.and_(*parts))


def _item(relation: ServedRelation, item: str, parameter: str) -> exp.Expr:
    negate = item.startswith("not.")
    body = item[4:] if negate else item
    for word in ("or", "and"):
        if body.startswith(word + "("):
            group = logical(relation, word, body[len(word) :], parameter)
            return exp.Not(this=group) if negate else group
    name, dot, spec = item.partition(".")
    if not dot:
        raise BadParameter(parameter, f"{item!r} is not column.operator.value")
    return condition(relation, name, spec, parameter)


def _top_level(text: str, parameter: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    items, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                raise BadParameter(parameter, "unbalanced parentheses")
        elif not quoted and depth == 0 and char == ",":
            items.append(text[start:index])
            start = index + 1
    if depth or quoted:
        raise BadParameter(parameter, "unbalanced parentheses or quotes")
    items.append(text[start:])
    return [i for i in items if i]


def where(relation: ServedRelation, params: list[tuple[str, str]]) -> exp.Expr | None:
    """Every filter of the query string, ANDed; None without filters."""
    parts: list[exp.Expr] = []
    for key, value in params:
        if "\x00" in value or "\x00" in key:
            raise BadParameter(key.replace("\x00", ""), "parameters cannot hold a NUL character")
        if key in {"or", "and"}:
            parts.append(logical(relation, key, value, key))
        elif key not in RESERVED:
            parts.append(condition(relation, key, value, key))
    return exp.and_(*parts) if parts else None


def selection(relation: ServedRelation, text: str | None) -> list[ServedColumn]:
    if not text:
        return list(relation.columns)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadParameter("select", "select names no column")
    return [column_of(relation, name, "select") for name in dict.fromkeys(names)]


def ordering(relation: ServedRelation, text: str | None) -> list[tuple[ServedColumn, bool]]:
    """``order=col.desc,col2`` as (column, descending)."""
    result: list[tuple[ServedColumn, bool]] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, direction = part.strip().partition(".")
        if direction not in {"", "asc", "desc"}:
            raise BadParameter("order", f"{part!r}: the direction is asc or desc (nulls always sort last)")
        column = column_of(relation, name, "order")
        if family(column) == "other":
            raise BadParameter("order", f"column {name!r} ({column.type}) cannot be sorted")
        result.append((column, direction == "desc"))
    return result
