"""A metric query and its compilation to one SELECT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.metric_filters import Filter
from gristmill.project.metric_specs import GRAINS, Grain, MetricLayer
from gristmill.sql.metrics.compiler import METRIC_TIME, Compiler

__all__ = ["METRIC_TIME", "MetricQuery", "compile_metric"]


@dataclass(frozen=True)
class MetricQuery:
    metric: str
    by: tuple[str, ...] = ()
    grain: Grain | None = None
    where: tuple[Filter, ...] = ()
    preaggregated: bool = True
    """Read a ``materialize:`` table when the query allows (False: always the base tables)."""


def compile_metric(layer: MetricLayer, query: MetricQuery) -> exp.Select:
    """The query as one SELECT: the keys (``metric_time`` first when a grain is asked, then ``by``
    as written) and a column named after the metric, ordered by the keys."""
    if query.metric not in layer.metrics:
        raise BadQuery(f'unknown metric "{query.metric}"', parameter="name", hint=_names(layer.metrics))
    if query.grain is not None and query.grain not in GRAINS:
        raise BadQuery(
            f'unknown grain "{query.grain}"', parameter="grain", hint=f"one of {', '.join(GRAINS)}"
        )
    keys = ((METRIC_TIME,) if query.grain else ()) + tuple(b for b in query.by if b != METRIC_TIME)
    if len(set(keys)) != len(keys):
        raise BadQuery("a dimension is named twice", parameter="by")
    compiler = Compiler(layer, query.metric, query.grain, query.by, query.where, keys, query.preaggregated)
    name = compiler.block(layer.metrics[query.metric])
    columns = [exp.column(k, table=name, quoted=True) for k in keys]
    select = exp.select(*columns, exp.alias_(exp.column("value", table=name), query.metric, quoted=True))
    select = select.from_(name)
    if columns:
        select = select.order_by(*(exp.Ordered(this=c.copy(), nulls_first=False) for c in columns))
    for cte_name, body in compiler.ctes:
        select = select.with_(cte_name, as_=body)
    return select


def _names(known: Mapping[str, object]) -> str:
    return "known: " + ", ".join(sorted(known)) if known else "declare metrics in metrics/*.yml"
