"""One dbt test as the queries a check can run, and the pieces of SQL they are built from.

Every query here is a sqlglot AST. What the user wrote (a column, a ``where`` config, an
expression, values quoted or not) is parsed in the project's dialect and put into the tree as a
node; stored checks hold the tree rendered in that dialect, as a check the user writes does."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gristmill.project.dialect import PROJECT_DIALECT

Builtin = tuple[str, tuple[str, ...], dict[str, Any]]
"""A built-in check: kind, columns, params."""
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
"""A column name a built-in check can name."""


class Skip(Exception):
    """A reason not to run one test (logged as a warning naming the test's file and line)."""


@dataclass(frozen=True)
class TestQuery:
    """One dbt test, in the forms a check can take.

    ``builtins`` mean exactly the test when no config restricts it. ``row`` is a condition that is
    true for a failing row, for tests that judge one row at a time. ``sql`` gives the SELECT of
    failing rows for a ``where`` clause (None: every row). ``dbt_sql`` is dbt's own query where it
    returns other rows (one per failing value): ``fail_calc``, ``error_if`` and ``warn_if`` count
    those. ``written`` is SQL the user wrote (a singular or custom test), kept as written."""

    __test__ = False  # not a pytest class, whatever its name

    builtins: tuple[Builtin, ...] = ()
    row: exp.Expr | None = None
    sql: Callable[[str | None], exp.Query] | None = None
    dbt_sql: Callable[[str | None], exp.Query] | None = None
    written: str | None = None

    def failing_rows(self, where: str | None) -> exp.Query:
        if self.written is not None:
            return user_query(self.written)
        if self.sql is not None:
            return self.sql(where)
        assert self.row is not None
        return exp.select("*").from_(tested(where)).where(self.row.copy())

    def dbt_rows(self, where: str | None) -> exp.Query:
        return self.dbt_sql(where) if self.dbt_sql is not None else self.failing_rows(where)


def user_sql(text: str) -> exp.Expr:
    """A piece of SQL the user wrote (a column, a condition, a value written as SQL)."""
    try:
        return sqlglot.parse_one(text, read=PROJECT_DIALECT)
    except SqlglotError as err:
        raise Skip(f"{text!r} is not SQL: {str(err).splitlines()[0]}") from None


def user_query(text: str) -> exp.Query:
    parsed = user_sql(text)
    if not isinstance(parsed, exp.Query):
        raise Skip(f"{text!r} is not a query")
    return parsed


def text(tree: exp.Expr) -> str:
    """A tree as a stored check holds it: in the project's dialect."""
    return tree.sql(dialect=PROJECT_DIALECT)


def tested(where: str | None) -> exp.Expr:
    """What a test reads: the asset, or only its rows meeting ``where`` (dbt's get_where_subquery)."""
    if not where:
        return exp.to_table("this")
    return exp.select("*").from_("this").where(user_sql(where)).subquery("dbt_subquery")


def table(asset: str) -> exp.Table:
    """An asset (``schema.name``) to read; a part that is no plain identifier comes quoted."""
    schema, name = asset.split(".", 1)
    return exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(schema))


def literal(value: Any, quote: bool = True) -> exp.Expr:
    """A value as dbt writes it into a test's SQL: quoted (``'{{ value }}'``) or as written."""
    return exp.Literal.string(str(value)) if quote else user_sql(str(value))


def columns(names: Iterable[Any]) -> list[exp.Expr]:
    """Columns (or expressions) as the test's arguments name them."""
    return [user_sql(str(name)) for name in names]


def is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value.copy(), expression=exp.Null())


def not_null(value: exp.Expr) -> exp.Expr:
    return exp.not_(is_null(value))


def is_not_true(condition: exp.Expr) -> exp.Expr:
    """``(condition) IS NOT TRUE``: a row fails when the condition is false or NULL."""
    return exp.not_(exp.Is(this=exp.paren(condition.copy()), expression=exp.true()))


def count_star() -> exp.Expr:
    return exp.Count(this=exp.Star())


def select_from(relation: exp.Expr | str, *expressions: exp.Expr | str) -> exp.Select:
    return exp.select(*(expressions or ("*",))).from_(relation)


def with_ctes(ctes: Sequence[tuple[str, exp.Query]], final: exp.Select) -> exp.Select:
    """``WITH a AS (...), b AS (...) <final>``."""
    for name, query in ctes:
        final = final.with_(name, as_=query)
    return final


def numbered(keys: list[exp.Expr], rows: exp.Select) -> exp.Select:
    """Rows sharing ``keys`` with an earlier row, without the row number that finds them."""
    number = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k in keys])
    inner = rows.select(exp.alias_(number, "dbt_row_number"), append=True)
    star = exp.Star(except_=[exp.column("dbt_row_number")])
    return (
        exp.select(star)
        .from_(inner.subquery("dbt_numbered"))
        .where(exp.GT(this=exp.column("dbt_row_number"), expression=exp.Literal.number(1)))
    )
