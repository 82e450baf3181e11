"""Pieces every kind of metric block uses: conditions, null-safe key joins, a ratio, and the
``Blocks`` a block is built in (``compiler.Compiler``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.metric_filters import Condition, Filter, parse_metric_filter, placeholder
from gristmill.project.metric_specs import Filters, Grain, Measure, MetricLayer, SemanticModel, filters_of
from gristmill.sql.metrics.rows import Rows

_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
}
Conditions = tuple[Filter | Condition, ...]


class Blocks(Protocol):
    """What a metric block is built in: the query's keys and grain, and a list of CTEs."""

    layer: MetricLayer
    metric: str
    grain: Grain | None
    keys: tuple[str, ...]
    where: Conditions

    def cte(self, select: exp.Expr) -> str: ...

    def rows(
        self, model: SemanticModel, measure: Measure, filters: Conditions, preaggregated: bool
    ) -> Rows: ...

    def aggregate(
        self, model: SemanticModel, measure: Measure, filters: Conditions, preaggregated: bool = True
    ) -> exp.Select: ...

    def joined(self, names: list[str], value: exp.Expr) -> exp.Select: ...


def same_keys(keys: Sequence[str], left: str, right: str) -> exp.Expr:
    return exp.and_(
        *(
            exp.NullSafeEQ(
                this=exp.column(k, table=left, quoted=True),
                expression=exp.column(k, table=right, quoted=True),
            )
            for k in keys
        )
    )


def ratio(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """As a double; NULL where the denominator is 0."""
    return exp.Div(
        this=exp.cast(numerator, "DOUBLE"), expression=exp.func("NULLIF", denominator, exp.Literal.number(0))
    )


def parsed(written: Filters) -> Conditions:
    """A definition's filters (checked when the project loaded)."""
    return tuple(parse_metric_filter(text) for text in filters_of(written))


def condition(rows: Rows, where: Filter | Condition) -> exp.Expr:
    """A condition over ``rows``: a structured filter's values as literals, or a definition's
    condition with its dimension placeholders replaced by their expressions."""
    if isinstance(where, Condition):
        swap = {placeholder(i): rows.expr(name) for i, name in enumerate(where.refs)}
        return exp.Paren(
            this=where.tree.copy().transform(
                lambda node: (
                    swap[node.name].copy() if isinstance(node, exp.Column) and node.name in swap else node
                )
            )
        )
    target = rows.expr(where.dimension)
    literals = [exp.Literal.string(v) for v in where.values]
    if where.op == "is_null":
        return exp.Is(this=target, expression=exp.null())
    if where.op == "not_null":
        return exp.Not(this=exp.Is(this=target, expression=exp.null()))
    if where.op in ("in", "not_in"):
        found = exp.In(this=target, expressions=literals)
        return exp.Not(this=found) if where.op == "not_in" else found
    if where.op not in _COMPARISONS:
        raise BadQuery(f'unknown operator "{where.op}"', parameter="where")
    return _COMPARISONS[where.op](this=target, expression=literals[0])
