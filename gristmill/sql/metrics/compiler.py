"""Each metric as a common table expression keyed by the query's keys with one ``value``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.metric_filters import Filter, names_of
from gristmill.project.metric_preaggregations import PreAggregation
from gristmill.project.metric_specs import (
    GRAINS,
    Grain,
    Measure,
    Metric,
    MetricLayer,
    Resolved,
    SemanticModel,
)
from gristmill.sql.metrics.conversion import conversion_block
from gristmill.sql.metrics.parts import Conditions, condition, parsed, ratio, same_keys
from gristmill.sql.metrics.rows import METRIC_TIME, Rows, resolve, rows_of
from gristmill.sql.metrics.spine import cumulative_block, filled, on_spine


class Compiler:
    def __init__(
        self,
        layer: MetricLayer,
        metric: str,
        grain: Grain | None,
        by: Sequence[str],
        where: Sequence[Filter],
        keys: tuple[str, ...],
        preaggregated: bool = True,
    ) -> None:
        self.layer, self.metric, self.grain, self.keys = layer, metric, grain, keys
        self.where: Conditions = tuple(where)
        self.preaggregated = preaggregated
        self.ctes: list[tuple[str, exp.Expr]] = []
        self.preaggregations: list[str] = []
        self._counter = itertools.count(1)

    def cte(self, select: exp.Expr) -> str:
        name = f"gm_{next(self._counter)}"
        self.ctes.append((name, select))
        return name

    def block(self, metric: Metric, filters: Conditions = ()) -> str:
        """The CTE holding ``metric``'s rows: the keys and ``value``; ``filters``: conditions of
        the metrics that read this one."""
        filters = (*filters, *parsed(metric.filter))
        if metric.type == "conversion":
            return conversion_block(self, metric, filters)
        if metric.type in ("simple", "cumulative"):
            return self._measure_block(metric, filters)
        inputs = metric.inputs()
        names = [self.block(self.layer.metrics[i.name], (*filters, *parsed(i.filter))) for i in inputs]
        if metric.type == "ratio":
            value = ratio(*(exp.column("value", table=n) for n in names))
        else:
            aliases = {(i.alias or i.name): n for i, n in zip(inputs, names, strict=True)}
            value = sqlglot.parse_one(str(metric.type_params.expr), dialect=PROJECT_DIALECT)
            value = value.transform(
                lambda node: (
                    exp.column("value", table=aliases[node.name])
                    if isinstance(node, exp.Column) and node.name in aliases
                    else node
                )
            )
        return self.cte(self.joined(names, value))

    def _measure_block(self, metric: Metric, filters: Conditions) -> str:
        measure_input = metric.type_params.measure_input
        assert measure_input is not None  # checked when the project loaded
        filters = (*filters, *parsed(measure_input.filter))
        model, measure = self.measure(measure_input.name)
        if metric.type == "cumulative" and self.grain is not None:
            name = cumulative_block(self, metric, model, measure, filters)
        else:
            name = self.cte(self.aggregate(model, measure, filters))
        if measure_input.join_to_timespine and self.grain is not None:
            name = on_spine(self, name)
        if measure_input.fill_nulls_with is not None:
            name = self.cte(filled(self, name, measure_input.fill_nulls_with))
        return name

    def measure(self, name: str) -> tuple[SemanticModel, Measure]:
        found = self.layer.measure(name)
        assert found is not None  # checked when the project loaded
        return found

    def rows(self, model: SemanticModel, measure: Measure, filters: Conditions, preaggregated: bool) -> Rows:
        """The rows of ``measure`` with every name the keys and ``filters`` use."""
        wanted = [(k, "by") for k in self.keys] + [(n, "where") for f in filters for n in names_of(f)]
        found = {
            name: resolve(self.layer, model, measure, name, parameter, self.metric)
            for name, parameter in wanted
        }
        for name, r in found.items():
            self._fine_enough(model, measure, r, r.grain or (self.grain if name == METRIC_TIME else None))
        grains = [self.grain if METRIC_TIME in self.keys else None] + [
            None for f in filters for n in names_of(f) if n == METRIC_TIME
        ]
        usable = self._materialized(self.layer.metrics[self.metric]) if preaggregated else []
        rows = rows_of(self.layer, model, measure, found, grains, usable)
        if rows.preaggregation:
            self.preaggregations.append(rows.preaggregation)
        return rows

    def _fine_enough(self, model: SemanticModel, measure: Measure, r: Resolved, grain: str | None) -> None:
        """A time is asked at its declared ``time_granularity`` or coarser (MetricFlow's rule)."""
        if grain is None or r.kind not in ("metric_time", "dimension"):
            return
        time = self.layer.time_dimension(model, measure) if r.kind == "metric_time" else None
        time = time or next((d for d in r.model.dimensions if d.name == r.name), None)
        finest = time.type_params.time_granularity if time and time.type_params else "day"
        if GRAINS.index(grain) < GRAINS.index(finest):
            raise BadQuery(
                f'"{r.name}" holds {finest}s (its time_granularity): it has no {grain}',
                parameter="grain" if r.kind == "metric_time" and r.grain is None else "by",
                hint=f"ask for {finest} or a coarser grain",
            )

    def _materialized(self, metric: Metric) -> list[PreAggregation]:
        """The pre-aggregations of ``metric`` and the metrics it reads: what a query of it may
        read (another metric's, sharing a measure, is left alone so its SQL never changes)."""
        if not self.preaggregated:
            return []
        own = [self.layer.preaggregations[metric.name]] if metric.name in self.layer.preaggregations else []
        return own + [p for i in metric.inputs() for p in self._materialized(self.layer.metrics[i.name])]

    def aggregate(
        self, model: SemanticModel, measure: Measure, filters: Conditions, preaggregated: bool = True
    ) -> exp.Select:
        """``measure`` by the query's keys, over the rows every condition keeps."""
        filters = (*self.where, *filters)
        rows = self.rows(model, measure, filters, preaggregated)
        columns = [exp.alias_(rows.expr(k, self.grain), k, quoted=True) for k in self.keys]
        select = exp.select(*columns, exp.alias_(rows.value, "value")).from_(rows.source)
        conditions = [condition(rows, f) for f in filters]
        if conditions:
            select = select.where(exp.and_(*conditions))
        if columns:
            select = select.group_by(*(exp.Literal.number(i + 1) for i in range(len(columns))))
        return select

    def joined(self, names: list[str], value: exp.Expr) -> exp.Select:
        """The inputs' blocks side by side: on the union of their keys, or (no keys) one row each."""
        if not self.keys:
            select = exp.select(exp.alias_(value, "value")).from_(names[0])
            for name in names[1:]:
                select = select.join(name, join_type="cross")
            return select
        quoted = [exp.column(k, quoted=True) for k in self.keys]
        union: exp.Expr = exp.select(*quoted).from_(names[0])
        for name in names[1:]:
            union = exp.union(union, exp.select(*(c.copy() for c in quoted)).from_(name), distinct=True)
        keys = self.cte(union)
        select = exp.select(
            *(exp.column(k, table=keys, quoted=True) for k in self.keys), exp.alias_(value, "value")
        )
        select = select.from_(keys)
        for name in names:
            select = select.join(name, on=same_keys(self.keys, keys, name), join_type="left")
        return select
