"""Personal-data classes that follow column lineage: a column computed from a classified column
carries its class (``upper(email)`` in a mart is still an email), unless the only way it reads the
column is through an aggregate the policy allows (``count(distinct email)`` is a number, not an
email). Masks by class then reach every column the data flows into without anyone tagging it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlglot import exp
from sqlglot.errors import ParseError

Column = tuple[str, str]
_AGGREGATES = {"count": exp.Count}


def propagate(
    declared: Mapping[str, Mapping[str, str | Collection[str]]],
    edges: Mapping[Column, tuple[Column, ...]],
    *,
    expressions: Mapping[Column, str] | None = None,
    allowed_aggregates: Collection[str] = ("count", "count_distinct"),
) -> dict[str, dict[str, frozenset[str]]]:
    """{asset: {column: classes}} for every declared column and every column computed from one.

    ``declared`` is what contracts say (``{asset: {column: class}}``), ``edges`` the column
    lineage (each column with the columns it reads) and ``expressions`` each column's SQL, used
    to tell an allowed aggregate apart from an expression that passes the value on. Without an
    expression, a read passes the class: unknown means personal."""
    classes: dict[Column, set[str]] = {}
    for asset, columns in declared.items():
        for column, found in columns.items():
            classes.setdefault((asset, column), set()).update({found} if isinstance(found, str) else found)
    readers: dict[Column, list[Column]] = {}
    for target, sources in edges.items():
        for source in sources:
            readers.setdefault(source, []).append(target)
    pending = list(classes)
    while pending:  # a worklist: each column is revisited only when it gained a class
        source = pending.pop()
        for target in readers.get(source, ()):
            sql = (expressions or {}).get(target)
            if sql is not None and _only_aggregated(sql, source[1], allowed_aggregates):
                continue
            before = len(classes.get(target, ()))
            classes.setdefault(target, set()).update(classes[source])
            if len(classes[target]) > before:
                pending.append(target)
    result: dict[str, dict[str, frozenset[str]]] = {}
    for (asset, column), found in sorted(classes.items()):
        result.setdefault(asset, {})[column] = frozenset(found)
    return result


def _only_aggregated(sql: str, column: str, allowed: Collection[str]) -> bool:
    """Does every reference to ``column`` in ``sql`` sit inside an allowed counting aggregate?"""
    try:
        tree: exp.Expr = exp.maybe_parse(sql)
    except ParseError:
        return False
    refs = [c for c in tree.find_all(exp.Column) if c.name == column]
    return bool(refs) and all(_counted(ref, allowed) for ref in refs)


def _counted(ref: exp.Column, allowed: Collection[str]) -> bool:
    count = ref.find_ancestor(exp.Count)
    if count is None:
        return False
    # Anything between the column and count() (a CASE picking a value, a window) is not counting.
    distinct = isinstance(count.this, exp.Distinct)
    direct = ref.parent is count or (distinct and ref.parent is count.this)
    if not direct or count.find_ancestor(exp.Window) is not None:
        return False
    return ("count_distinct" if distinct else "count") in allowed
