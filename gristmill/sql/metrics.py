"""Compiles a metric query (a metric, the dimensions to group by, a time grain, filters) to one
SELECT as a sqlglot tree, rendered for the engine by ``sql.render``.

Every metric becomes a block of rows keyed by the query's dimensions with one ``value``: a simple
metric aggregates its measure over its table; a cumulative one joins each time bucket to the rows
of its window before aggregating; a ratio or derived metric joins its inputs' blocks on the keys
(null-safe, over the union of their keys, so a key only one input has still shows). Filter values
are sqlglot literals compared with a dimension the project declares: they are data, never SQL."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.metric_specs import GRAINS, Grain, Measure, Metric, MetricLayer, SemanticModel
from gristmill.project.metrics import parse_window
from gristmill.sql.functions import truncate_to

METRIC_TIME = "metric_time"
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_null", "not_null")
_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
}
_BUCKET = "gm_bucket"


@dataclass(frozen=True)
class Filter:
    """``dimension:op:value[,value…]``: ``country:in:DE,FR``, ``metric_time:gte:2024-01-01``."""

    dimension: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricQuery:
    metric: str
    by: tuple[str, ...] = ()
    grain: Grain | None = None
    where: tuple[Filter, ...] = ()


def parse_filter(text: str) -> Filter:
    """One ``where`` condition as written on the command line or in a URL. A value may hold any
    character (colons too: ``metric_time:gte:2024-01-01 00:00``); ``in`` splits on commas."""
    dimension, _, rest = text.partition(":")
    op, colon, value = rest.partition(":")
    if not dimension or op not in OPERATORS:
        raise BadQuery(
            f'filter "{text}" is not dimension:operator:value',
            parameter="where",
            hint=f"operators: {', '.join(OPERATORS)}; e.g. country:in:DE,FR",
        )
    if op in ("is_null", "not_null"):
        return Filter(dimension, op)
    if not colon:
        raise BadQuery(
            f'filter "{text}" has no value', parameter="where", hint=f"write {dimension}:{op}:<value>"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadQuery(f'filter on "{dimension}": a value may not hold control characters', parameter="where")
    values = tuple(value.split(",")) if op in ("in", "not_in") else (value,)
    return Filter(dimension, op, values)


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
    compiler = _Compiler(layer, query, keys)
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


class _Compiler:
    def __init__(self, layer: MetricLayer, query: MetricQuery, keys: tuple[str, ...]) -> None:
        self.layer, self.query, self.keys = layer, query, keys
        self.ctes: list[tuple[str, exp.Expr]] = []
        self._counter = itertools.count(1)

    def _cte(self, select: exp.Expr) -> str:
        name = f"gm_{next(self._counter)}"
        self.ctes.append((name, select))
        return name

    def block(self, metric: Metric) -> str:
        """The CTE holding ``metric``'s rows: the keys and ``value``."""
        if metric.type in ("simple", "cumulative"):
            model, measure = self._measure(metric)
            if metric.type == "cumulative" and self.query.grain is not None:
                return self._cumulative(metric, model, measure)
            return self._cte(self._aggregate(model, measure, exp.to_table(self.layer.assets[model.name])))
        inputs = metric.inputs()
        names = [self.block(self.layer.metrics[i.name]) for i in inputs]
        if metric.type == "ratio":
            numerator, denominator = (exp.column("value", table=n) for n in names)
            value: exp.Expr = exp.Div(
                this=exp.cast(numerator, "DOUBLE"),
                expression=exp.func("NULLIF", denominator, exp.Literal.number(0)),
            )
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
        return self._cte(self._joined(names, value))

    def _measure(self, metric: Metric) -> tuple[SemanticModel, Measure]:
        found = self.layer.measure(str(metric.type_params.measure))
        assert found is not None  # checked when the project loaded
        return found

    def _joined(self, names: list[str], value: exp.Expr) -> exp.Select:
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
        keys = self._cte(union)
        select = exp.select(
            *(exp.column(k, table=keys, quoted=True) for k in self.keys), exp.alias_(value, "value")
        )
        select = select.from_(keys)
        for name in names:
            on = exp.and_(
                *(
                    exp.NullSafeEQ(
                        this=exp.column(k, table=keys, quoted=True),
                        expression=exp.column(k, table=name, quoted=True),
                    )
                    for k in self.keys
                )
            )
            select = select.join(name, on=on, join_type="left")
        return select

    def _aggregate(
        self, model: SemanticModel, measure: Measure, source: exp.Expr, time: exp.Expr | None = None
    ) -> exp.Select:
        """``measure`` over ``source`` by the query's keys (``time``: what ``metric_time`` is,
        when not the measure's own time truncated to the grain), filtered."""
        columns = [exp.alias_(self._key(model, measure, k, time), k, quoted=True) for k in self.keys]
        select = exp.select(*columns, exp.alias_(_aggregation(measure), "value")).from_(source)
        conditions = [self._condition(model, measure, f) for f in self.query.where]
        if conditions:
            select = select.where(exp.and_(*conditions))
        if columns:
            select = select.group_by(*(exp.Literal.number(i + 1) for i in range(len(columns))))
        return select

    def _cumulative(self, metric: Metric, model: SemanticModel, measure: Measure) -> str:
        """Each bucket of the grain that has rows, with the measure over the rows of its window:
        the window before the bucket's end, the grain-to-date, or everything before its end."""
        grain = str(self.query.grain)
        table = exp.to_table(self.layer.assets[model.name], alias="gm_source")
        moment = self._time(model, measure)
        spine = (
            exp.select(exp.alias_(truncate_to(grain, moment.copy()), _BUCKET)).distinct().from_(table.copy())
        )
        spine = spine.where(exp.Not(this=exp.Is(this=moment.copy(), expression=exp.null())))
        spine_name = self._cte(spine)
        bucket = exp.column(_BUCKET, table=spine_name)
        end = exp.Add(this=bucket.copy(), expression=_interval(1, grain))
        on: exp.Expr = exp.LT(this=moment.copy(), expression=end.copy())
        if metric.window is not None:
            count, unit = parse_window(metric.window) or (1, "day")
            start: exp.Expr = exp.Sub(this=end.copy(), expression=_interval(count, unit))
            on = exp.and_(on, exp.GTE(this=moment.copy(), expression=start))
        elif metric.grain_to_date is not None:
            if GRAINS.index(grain) > GRAINS.index(metric.grain_to_date):
                to_date = metric.grain_to_date
                raise BadQuery(
                    f'metric "{metric.name}" accumulates {to_date}-to-date: a {grain} holds several',
                    parameter="grain",
                    hint=f"ask for {metric.grain_to_date} or a finer grain",
                )
            on = exp.and_(
                on, exp.GTE(this=moment.copy(), expression=truncate_to(metric.grain_to_date, bucket.copy()))
            )
        rows = exp.Column(this=exp.Star(), table=exp.to_identifier("gm_source"))
        source = exp.select(bucket.copy(), rows).from_(spine_name).join(table, on=on)
        return self._cte(
            self._aggregate(
                model,
                measure,
                exp.Subquery(this=source, alias=exp.TableAlias(this=exp.to_identifier("gm_rows"))),
                time=exp.column(_BUCKET),
            )
        )

    def _time(self, model: SemanticModel, measure: Measure) -> exp.Expr:
        dimension = self.layer.time_dimension(model, measure)
        if dimension is None:
            raise BadQuery(
                f'measure "{measure.name}" of semantic model "{model.name}" has no time dimension',
                parameter="grain",
                hint="set defaults.agg_time_dimension in its semantic model, or ask without a grain",
            )
        return _expression(dimension.sql)

    def _key(
        self, model: SemanticModel, measure: Measure, name: str, time: exp.Expr | None = None
    ) -> exp.Expr:
        if name == METRIC_TIME:
            return (
                time.copy()
                if time is not None
                else truncate_to(str(self.query.grain), self._time(model, measure))
            )
        return self._dimension(model, measure, name, "by")

    def _dimension(self, model: SemanticModel, measure: Measure, name: str, parameter: str) -> exp.Expr:
        """What ``name`` means in ``model``: a dimension (``country``, or MetricFlow's
        ``<entity>__country``), an entity, a time dimension at a grain (``ordered_at__month``), or
        ``metric_time`` (the measure's time; ``metric_time__month`` at that grain)."""
        base, _, grain = name.rpartition("__") if name.rsplit("__", 1)[-1] in GRAINS else (name, "", "")
        entities = {e.name: e for e in model.entities}
        head, _, tail = base.partition("__")
        if tail and head in entities:
            base = tail
        if base == METRIC_TIME:
            value = self._time(model, measure)
        elif base in entities:
            value = _expression(entities[base].expr or base)
        else:
            dimension = next((d for d in model.dimensions if d.name == base), None)
            if dimension is None:
                known = [d.name for d in model.dimensions] + list(entities)
                raise BadQuery(
                    f'"{name}" is no dimension of semantic model "{model.name}"'
                    f' (metric "{self.query.metric}")',
                    parameter=parameter,
                    hint="known: " + ", ".join([METRIC_TIME, *known]),
                )
            if grain and dimension.type != "time":
                raise BadQuery(f'"{base}" is not a time dimension: it has no {grain}', parameter=parameter)
            value = _expression(dimension.sql)
        return truncate_to(grain, value) if grain else value

    def _condition(self, model: SemanticModel, measure: Measure, where: Filter) -> exp.Expr:
        target = self._dimension(model, measure, where.dimension, "where")
        literals = [exp.Literal.string(v) for v in where.values]
        if where.op == "is_null":
            return exp.Is(this=target, expression=exp.null())
        if where.op == "not_null":
            return exp.Not(this=exp.Is(this=target, expression=exp.null()))
        if where.op in ("in", "not_in"):
            found = exp.In(this=target, expressions=literals)
            return exp.Not(this=found) if where.op == "not_in" else found
        return _COMPARISONS[where.op](this=target, expression=literals[0])


def _expression(sql: str) -> exp.Expr:
    """A declared expression (checked to parse when the project loaded), in the project's dialect."""
    return sqlglot.parse_one(sql, dialect=PROJECT_DIALECT)


def _interval(count: int, unit: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(count)), unit=exp.var(unit.upper()))


def _aggregation(measure: Measure) -> exp.Expr:
    value = _expression(measure.sql)
    if measure.agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    functions: dict[str, type[exp.Func]] = {
        "sum": exp.Sum,
        "count": exp.Count,
        "avg": exp.Avg,
        "min": exp.Min,
        "max": exp.Max,
    }
    return functions[measure.agg](this=value)
