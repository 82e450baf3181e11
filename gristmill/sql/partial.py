"""Two-phase aggregation: a grouped query split into partial aggregates, computed per
micro-batch, and their merge, computed once when a window closes.

A windowed stream model such as ``select user, window_end, sum(amount), count(*) ... group by
all`` then keeps a few rows per group and window between batches instead of every event: the
state is as small as the answer, whatever the event rate. Only aggregates that decompose split
(sum, count, min, max, avg, each optionally with FILTER); anything else — DISTINCT aggregates,
window functions, grouping sets, a select that is not one plain grouped SELECT — returns None
and the caller keeps rows instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

KEY = "_gm_k{}"
PART = "_gm_p{}"

_SIMPLE: dict[type[exp.Expr], str] = {exp.Sum: "sum", exp.Count: "sum", exp.Min: "min", exp.Max: "max"}
"""Aggregate -> how its partials merge (counts add up)."""


@dataclass(frozen=True)
class Split:
    keys: list[exp.Expr]
    """The group-by expressions, over the query's own FROM (columns ``_gm_k0``...)."""
    partials: list[exp.Expr]
    """The partial aggregates, over the same rows (columns ``_gm_p0``...)."""
    final: list[exp.Expr]
    """The query's select list over the partial columns, one per output column, unaliased."""
    having: exp.Expr | None
    """The query's HAVING over the partial columns."""

    def partial_select(self, select: exp.Select, extra: Sequence[tuple[exp.Expr, str]]) -> exp.Select:
        """``select`` computing, per group and ``extra`` column, the keys and partials."""
        partial = select.copy()
        for arg in ("having", "order", "limit", "offset"):
            partial.set(arg, None)
        named = [
            *(exp.alias_(e.copy(), name) for e, name in extra),
            *(exp.alias_(k.copy(), KEY.format(i)) for i, k in enumerate(self.keys)),
            *(exp.alias_(p.copy(), PART.format(i)) for i, p in enumerate(self.partials)),
        ]
        partial.set("expressions", named)
        groups = [e.copy() for e, _ in extra] + [k.copy() for k in self.keys]
        partial.set("group", exp.Group(expressions=groups) if groups else None)
        return partial

    def final_select(self, source: exp.Expr, names: Sequence[str]) -> exp.Select:
        """The query's rows from the partial rows of ``source``, columns named ``names``."""
        final = exp.select(
            *(exp.alias_(e.copy(), name, quoted=True) for e, name in zip(self.final, names, strict=True))
        ).from_(source)
        if self.keys:
            final = final.group_by(*(exp.column(KEY.format(i)) for i in range(len(self.keys))))
        if self.having is not None:
            final = final.having(self.having.copy())
        return final


def split(query: exp.Expr) -> Split | None:
    """The two phases of ``query``, or None when it does not decompose."""
    if not isinstance(query, exp.Select) or query.args.get("with_") or query.args.get("with"):
        return None
    if any(query.args.get(arg) for arg in ("distinct", "limit", "offset", "qualify", "windows")):
        return None
    group = query.args.get("group")
    if group is None or any(group.args.get(a) for a in ("rollup", "cube", "grouping_sets", "totals")):
        return None
    having = query.args.get("having")
    # A function sqlglot does not know may be an aggregate (count_star()): it cannot be merged.
    unknown = exp.Window | exp.Subquery | exp.Anonymous
    if any(isinstance(n, unknown) for e in [*query.expressions, having] if e for n in e.walk()):
        return None
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in query.expressions):
        return None  # select * (or t.*) of a grouped query
    if any(not isinstance(t, exp.Table) for t in _sources(query)):
        return None
    outputs = [e.unalias() if isinstance(e, exp.Alias) else e for e in query.expressions]
    keys = _keys(group, outputs)
    if keys is None:
        return None
    partials: list[exp.Expr] = []
    final = [_merge(e, keys, partials) for e in outputs]
    merged_having = _merge(having.this, keys, partials) if having is not None else None
    if any(e is None for e in final) or (having is not None and merged_having is None):
        return None
    return Split(keys, partials, [e for e in final if e is not None], merged_having)


def _sources(query: exp.Select) -> list[exp.Expr]:
    from_ = query.args.get("from_") or query.args.get("from")
    found = [from_.this] if from_ is not None else []
    return found + [join.this for join in query.args.get("joins") or ()]


def _keys(group: exp.Group, outputs: list[exp.Expr]) -> list[exp.Expr] | None:
    if group.args.get("all"):
        # Constants are no keys (as a key, a number would read as a position).
        return [
            e
            for e in outputs
            if not any(isinstance(n, exp.AggFunc) for n in e.walk()) and any(e.find_all(exp.Column))
        ]
    keys: list[exp.Expr] = []
    for e in group.expressions:
        if isinstance(e, exp.Literal) and not e.is_string:  # GROUP BY 1: the first output
            position = int(e.this) - 1
            if not 0 <= position < len(outputs):
                return None
            keys.append(outputs[position])
        else:
            keys.append(e)
    return keys


def _merge(expression: exp.Expr, keys: list[exp.Expr], partials: list[exp.Expr]) -> exp.Expr | None:
    """``expression`` over the partial columns: keys become their columns, aggregates the merge
    of their partials (appended to ``partials``); None when a column is left over."""
    failed = False

    def swap(node: exp.Expr) -> exp.Expr:
        nonlocal failed
        for i, key in enumerate(keys):
            if node == key:
                return exp.column(KEY.format(i))
        aggregate, condition = (node.this, node.expression) if isinstance(node, exp.Filter) else (node, None)
        if isinstance(aggregate, exp.AggFunc):
            merged = _aggregate(aggregate, condition, partials)
            if merged is None:
                failed = True
                return node
            return merged
        return node

    result = expression.copy().transform(swap)
    if failed:
        return None
    leftover = [c for c in result.find_all(exp.Column) if not c.name.startswith(("_gm_k", "_gm_p"))]
    return None if leftover else result


def _aggregate(
    aggregate: exp.AggFunc, condition: exp.Expr | None, partials: list[exp.Expr]
) -> exp.Expr | None:
    if any(isinstance(n, exp.Distinct) for n in aggregate.walk()):
        return None
    if any(value for name, value in aggregate.args.items() if name not in ("this", "big_int")):
        return None  # e.g. max(x, 3), the top three: a list, not a maximum

    def partial(node: exp.Expr) -> exp.Column:
        if condition is not None:
            node = exp.Filter(this=node, expression=condition.copy())
        partials.append(node)
        return exp.column(PART.format(len(partials) - 1))

    if isinstance(aggregate, exp.Avg):
        total = partial(exp.Sum(this=aggregate.this.copy()))
        count = partial(exp.Count(this=aggregate.this.copy()))
        return exp.Div(
            this=exp.cast(exp.Sum(this=total), exp.DataType.Type.DOUBLE),
            expression=exp.Sum(this=count),
        )
    merge = _SIMPLE.get(type(aggregate))
    if merge is None:
        return None
    column = partial(aggregate.copy())
    merged = exp.func(merge, column)
    if isinstance(aggregate, exp.Count):  # a sum of counts is a count: keep its type
        return exp.cast(merged, exp.DataType.Type.BIGINT)
    return merged
