"""Render a statement for one engine: the one place a dialect is named.

Nodes listed in ``sql.functions.LOWERINGS`` for the dialect are rewritten to its spelling, then
sqlglot's generator for that dialect writes the text.
"""

from __future__ import annotations

from sqlglot import exp

from gristmill.sql.functions import LOWERINGS


def lower(statement: exp.Expr, dialect: str) -> exp.Expr:
    """The statement with every node the dialect spells differently rewritten (a copy if any)."""
    table = LOWERINGS.get(dialect)
    if not table:
        return statement

    def replace(node: exp.Expr) -> exp.Expr:
        rewrite = table.get(type(node))
        return rewrite(node) if rewrite is not None else node

    return statement.copy().transform(replace, copy=False)


def render(statement: exp.Expr, dialect: str) -> str:
    return lower(statement, dialect).sql(dialect=dialect)
