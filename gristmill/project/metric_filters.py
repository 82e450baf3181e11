"""The conditions of metric queries and metric definitions, as data: a query's structured
``dimension:op:value`` and a metric's ``filter`` in MetricFlow's Jinja-ish form
(``{{ Dimension('customer__country') }} = 'DE'``). A definition's SQL condition is parsed once and
kept to comparisons, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``LIKE``, ``IS`` and literals over
the dimensions it names: no column, function or subquery of its own, so a filter reaches only
what the semantic models declare."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.dialect import PROJECT_DIALECT

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_null", "not_null")
_REF = "__gm_ref_"
_JINJA = re.compile(
    r"\{\{\s*(Dimension|TimeDimension|Entity)\(\s*['\"]([a-z0-9_]+)['\"]\s*(?:,\s*['\"]([a-z]+)['\"]\s*)?\)"
    r"(?:\.grain\(\s*['\"]([a-z]+)['\"]\s*\))?\s*\}\}"
)
_ALLOWED = (
    exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
    exp.LT, exp.LTE, exp.And, exp.Or, exp.Not, exp.Paren, exp.In, exp.Is, exp.Between, exp.Like,
    exp.ILike, exp.Cast, exp.DataType, exp.Neg, exp.DataTypeParam, exp.Var,
)  # fmt: skip


@dataclass(frozen=True)
class Filter:
    """``dimension:op:value[,value…]``: ``country:in:DE,FR``, ``metric_time:gte:2024-01-01``."""

    dimension: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """A definition's SQL condition: ``tree`` refers to ``refs[i]`` (a dimension name as a query
    writes it) through the placeholder column ``placeholder(i)``."""

    tree: exp.Expr
    refs: tuple[str, ...]


def placeholder(index: int) -> str:
    return f"{_REF}{index}"


def parse_filter(text: str) -> Filter:
    """One ``where`` condition as written on the command line or in a URL. A value may hold any
    character (colons too: ``metric_time:gte:2024-01-01 00:00``); ``in`` splits on commas."""
    dimension, _, rest = text.partition(":")
    op, colon, value = rest.partition(":")
    if not dimension or op not in OPERATORS:
        raise BadQuery(
            f'filter "{text}" is not dimension:operator:value',
            parameter="where",
            hint=f"operators: {', '.join(OPERATORS)}; e.g. country:in:DE,FR",
        )
    if op in ("is_null", "not_null"):
        return Filter(dimension, op)
    if not colon:
        raise BadQuery(
            f'filter "{text}" has no value', parameter="where", hint=f"write {dimension}:{op}:<value>"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadQuery(f'filter on "{dimension}": a value may not hold control characters', parameter="where")
    values = tuple(value.split(",")) if op in ("in", "not_in") else (value,)
    return Filter(dimension, op, values)


def parse_metric_filter(text: str) -> Filter | Condition:
    """A metric's ``filter`` entry; ``ValueError`` saying what is wrong with it."""
    if "{{" not in text:
        try:
            return parse_filter(text)
        except BadQuery as err:
            raise ValueError(f"{err.message} ({err.hint})") from None
    refs: list[str] = []

    def swap(found: re.Match[str]) -> str:
        kind, name, grain = found.group(1), found.group(2), found.group(3) or found.group(4)
        if (found.group(3) and kind != "TimeDimension") or (found.group(4) and kind == "Entity"):
            raise ValueError(f"{kind}('{name}') takes no grain")
        refs.append(f"{name}__{grain}" if grain else name)
        return placeholder(len(refs) - 1)

    sql = _JINJA.sub(swap, text)
    if "{{" in sql or "{%" in sql:
        raise ValueError(
            "a filter names dimensions as {{ Dimension('name') }}, {{ TimeDimension('name', 'month') }}"
            " or {{ Entity('name') }}, nothing else in braces"
        )
    try:
        statements = sqlglot.parse(sql, dialect=PROJECT_DIALECT)
    except sqlglot.errors.ParseError:
        raise ValueError(f'filter "{text}" is not a SQL condition') from None
    if len(statements) != 1 or statements[0] is None:
        raise ValueError(f'filter "{text}" is not a SQL condition (one condition, no ";")')
    tree = statements[0]
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            raise ValueError(
                f'a filter may not use "{node.sql(PROJECT_DIALECT)}" (comparisons of dimensions only)'
            )
        if isinstance(node, exp.Column) and (node.table or not node.name.startswith(_REF)):
            raise ValueError(
                f"filter uses \"{node.sql(PROJECT_DIALECT)}\": name dimensions as {{{{ Dimension('name') }}}}"
            )
    if not refs:
        raise ValueError("a filter names at least one {{ Dimension('name') }}")
    return Condition(tree, tuple(refs))


def names_of(written: Filter | Condition) -> tuple[str, ...]:
    return (written.dimension,) if isinstance(written, Filter) else written.refs
