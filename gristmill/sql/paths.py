"""SQL over a path inside a nested column: struct fields and list elements, at any depth."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from gristmill.sql.functions import list_any, list_transform, struct_field

LIST = "[]"
"""A path step into the elements of a list (``items[].sku`` is ``("[]", "sku")`` below ``items``)."""


def any_at(
    value: exp.Expr, path: Sequence[str], predicate: Callable[[exp.Expr], exp.Expr], depth: int = 0
) -> exp.Expr:
    """True when ``predicate`` holds for some value at ``path`` below ``value`` (every element of
    every list on the way is looked at); false, never NULL, when none does."""
    if not path:
        return exp.func("coalesce", predicate(value), exp.false())
    step, rest = path[0], path[1:]
    if step == LIST:
        name = f"_gm_e{depth}"
        inner = any_at(exp.column(name), rest, predicate, depth + 1)
        each = list_transform(value, name, inner)
        return exp.func("coalesce", list_any(each), exp.false())
    return any_at(struct_field(value, step), rest, predicate, depth)
