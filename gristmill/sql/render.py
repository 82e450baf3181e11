"""Render a statement for one engine: the one place a dialect is named.

Nodes listed in ``sql.functions.LOWERINGS`` for the dialect are rewritten to its spelling, then
sqlglot's generator for that dialect writes the text.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from gristmill.sql.functions import LOWERINGS

DERIVED = {"redshift": "postgres"}
"""A dialect compiled for ahead of its own engine (``gristmill compile --dialect redshift``) takes
the lowerings of the engine it derives from, then sqlglot's generator for itself writes the text:
Redshift speaks PostgreSQL's SQL (GROUP BY ALL spelled out, ``md5`` and ``regexp`` forms alike)."""


def lower(statement: exp.Expr, dialect: str) -> exp.Expr:
    """The statement with every node the dialect spells differently rewritten (a copy if any).

    Children are lowered before their parent, so a rewrite sees its arguments already in the
    dialect's spelling and what it builds around them needs no second pass."""
    table = LOWERINGS.get(dialect) or LOWERINGS.get(DERIVED.get(dialect, ""))
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


def render(statement: exp.Expr, dialect: str, *, strict: bool = False) -> str:
    """``strict``: raise ``sqlglot.errors.UnsupportedError`` where the dialect has no spelling for
    a node, rather than write what sqlglot can (a warning in its log, SQL the engine rejects)."""
    level = ErrorLevel.RAISE if strict else ErrorLevel.WARN
    return lower(statement, dialect).sql(dialect=dialect, unsupported_level=level)
