"""Render a statement for one engine: the one place a dialect is named.

Nodes listed in ``sql.functions.LOWERINGS`` for the dialect are rewritten to its spelling, then
sqlglot's generator for that dialect writes the text.
"""

from __future__ import annotations

from sqlglot import exp

from gristmill.sql.functions import LOWERINGS


def lower(statement: exp.Expr, dialect: str) -> exp.Expr:
    """The statement with every node the dialect spells differently rewritten (a copy if any).

    Children are lowered before their parent, so a rewrite sees its arguments already in the
    dialect's spelling and what it builds around them needs no second pass."""
    table = LOWERINGS.get(dialect)
    if not table:
        return statement
    root = statement.copy()
    for node in reversed(list(root.dfs())):
        rewrite = table.get(type(node))
        if rewrite is None:
            continue
        lowered = rewrite(node)
        if lowered is node:
            continue
        if node is root:
            root = lowered
        else:
            node.replace(lowered)
    return root


def render(statement: exp.Expr, dialect: str) -> str:
    return lower(statement, dialect).sql(dialect=dialect)
