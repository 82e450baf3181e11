"""Render a statement for one engine: the one place a dialect is named.

Nodes listed in ``sql.functions.LOWERINGS`` for the dialect are rewritten to its spelling, then
sqlglot's generator for that dialect writes the text.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from gristmill.sql.functions import LOWERINGS
from gristmill.sql.model_functions import NO_FORM

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
    lowered = lower(statement, dialect)
    if strict:
        found = _no_form(lowered, dialect)
        if found is not None:
            raise UnsupportedError(found[0])
    return lowered.sql(dialect=dialect, unsupported_level=level)


def unspellable(statement: exp.Expr, dialect: str) -> tuple[str, exp.Expr | None] | None:
    """Why ``dialect`` cannot run ``statement`` as written, with the node at fault when known
    (its position in the model's text is kept through lowering); None when it can."""
    lowered = lower(statement, dialect)
    found = _no_form(lowered, dialect)
    if found is not None:
        return found
    try:
        lowered.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        return str(err), None
    return None


def _no_form(statement: exp.Expr, dialect: str) -> tuple[str, exp.Expr] | None:
    """sqlglot writes some nodes a dialect has no form for without a word (a DuckDB-only function
    by its name, ``* EXCLUDE``): ``NO_FORM`` names them."""
    check = NO_FORM.get(DERIVED.get(dialect, dialect))
    if check is None:
        return None
    for node in statement.walk():
        problem = check(node)
        if problem is not None:
            return problem, node
    return None
