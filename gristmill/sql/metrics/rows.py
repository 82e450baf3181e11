"""The rows a measure is aggregated over and what each dimension name means on them: the
semantic model's table; that table left-joined to the models a dimension was reached through
(on an entity that is primary or unique there, so no row of the measure repeats); or the
metric's ``materialize:`` table, when every name the query uses is one of its columns and its
grain is as fine as the query's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from gristmill.errors import BadQuery
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.metric_preaggregations import REAGGREGATE, PreAggregation
from gristmill.project.metric_specs import GRAINS, Measure, MetricLayer, Resolved, SemanticModel, UnknownName

METRIC_TIME = "metric_time"
_BASE = "gm_base"


@dataclass
class Rows:
    source: exp.Expr
    """The FROM item."""
    value: exp.Expr
    """The measure's aggregation over it."""
    found: dict[str, Resolved] = field(default_factory=dict)
    columns: dict[str, exp.Expr] = field(default_factory=dict)
    """Name as the query writes it -> its expression, before any grain is applied."""
    preaggregation: str | None = None

    def expr(self, name: str, grain: str | None = None) -> exp.Expr:
        """``name``'s expression, truncated to its own grain (``ordered_at__month``) or, for a
        bare ``metric_time`` key, to ``grain``."""
        found = self.found[name]
        truncate = found.grain or (grain if found.kind == "metric_time" else None)
        value = self.columns[name].copy()
        return truncate_to(truncate, value) if truncate else value


def truncate_to(grain: str, value: exp.Expr) -> exp.Expr:
    """The start of the ``grain`` holding ``value``: a date (weeks start on Monday), or for
    ``hour`` a timestamp."""
    trunc = exp.TimestampTrunc(this=value, unit=exp.var(grain.upper()))
    return trunc if grain == "hour" else exp.cast(trunc, "DATE")


def expression(sql: str) -> exp.Expr:
    """A declared expression (checked to parse when the project loaded), in the project's dialect."""
    return sqlglot.parse_one(sql, dialect=PROJECT_DIALECT)


def qualified(value: exp.Expr, table: str) -> exp.Expr:
    """``value`` with its unqualified columns read from ``table``."""

    def qualify(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            return exp.Column(this=node.this.copy(), table=exp.to_identifier(table))
        return node

    return value.copy().transform(qualify)


def aggregation(measure: Measure, value: exp.Expr | None = None) -> exp.Expr:
    value = value if value is not None else expression(measure.sql)
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


def resolve(
    layer: MetricLayer, model: SemanticModel, measure: Measure, name: str, parameter: str, metric: str
) -> Resolved:
    try:
        return layer.resolve(model, measure, name)
    except UnknownName as err:
        raise BadQuery(f'{err.message} (metric "{metric}")', parameter=parameter, hint=err.hint) from None


def time_of(layer: MetricLayer, model: SemanticModel, measure: Measure) -> exp.Expr:
    dimension = layer.time_dimension(model, measure)
    if dimension is None:
        raise BadQuery(
            f'measure "{measure.name}" of semantic model "{model.name}" has no time dimension',
            parameter="grain",
            hint="set defaults.agg_time_dimension in its semantic model, or ask without a grain",
        )
    return expression(dimension.sql)


def rows_of(
    layer: MetricLayer,
    model: SemanticModel,
    measure: Measure,
    found: dict[str, Resolved],
    grains: Sequence[str | None],
    preaggregations: Sequence[PreAggregation],
) -> Rows:
    """The rows for ``measure`` with every name in ``found``; ``grains``: each grain
    ``metric_time`` is asked at (None: compared as it is), to decide whether a pre-aggregation
    is fine enough; ``preaggregations``: those it may read."""
    for pre in preaggregations:
        if _fits(layer, pre, model, measure, found, grains):
            return _preaggregated(pre, measure, found)
    joins = {r.via.name: r for r in found.values() if r.via is not None}
    columns = {name: _column(layer, model, measure, r) for name, r in found.items()}
    table = exp.to_table(layer.assets[model.name])
    if not joins:
        return Rows(table, aggregation(measure), found, columns)
    picked: list[exp.Expr] = [exp.Column(this=exp.Star(), table=exp.to_identifier(_BASE))]
    source = exp.select().from_(exp.to_table(layer.assets[model.name], alias=_BASE))
    for entity_name, r in joins.items():
        alias = f"gm_{entity_name}"
        other = next(e for e in r.model.entities if e.name == entity_name)
        assert r.via is not None
        on = exp.EQ(
            this=qualified(expression(r.via.expr or r.via.name), _BASE),
            expression=qualified(expression(other.expr or other.name), alias),
        )
        source = source.join(exp.to_table(layer.assets[r.model.name], alias=alias), on=on, join_type="left")
    for name, r in found.items():
        if r.via is not None:
            column = f"gm_{r.via.name}__{r.name}"
            dimension = next(d for d in r.model.dimensions if d.name == r.name)
            picked.append(
                exp.alias_(qualified(expression(dimension.sql), f"gm_{r.via.name}"), column, quoted=True)
            )
            columns[name] = exp.column(column, quoted=True)
    source = source.select(*picked)
    subquery = exp.Subquery(this=source, alias=exp.TableAlias(this=exp.to_identifier("gm_joined")))
    return Rows(subquery, aggregation(measure), found, columns)


def _column(layer: MetricLayer, model: SemanticModel, measure: Measure, r: Resolved) -> exp.Expr:
    if r.kind == "metric_time":
        return time_of(layer, model, measure)
    if r.kind == "entity":
        entity = next(e for e in model.entities if e.name == r.name)
        return expression(entity.expr or entity.name)
    dimension = next(d for d in r.model.dimensions if d.name == r.name)
    return expression(dimension.sql)


def _fits(
    layer: MetricLayer,
    pre: PreAggregation,
    model: SemanticModel,
    measure: Measure,
    found: dict[str, Resolved],
    grains: Sequence[str | None],
) -> bool:
    if pre.model != model.name or measure.name not in pre.measures or measure.agg not in REAGGREGATE:
        return False
    time = layer.time_dimension(model, measure)
    finest = time.type_params.time_granularity if time and time.type_params else "day"
    for r in found.values():
        if r.kind == "metric_time":
            wanted = [r.grain] if r.grain else list(grains)
            # a bare metric_time compared as it is equals the pre-aggregation's only when the
            # data is no finer than it
            if any(GRAINS.index(g or finest) < GRAINS.index(pre.grain) for g in wanted):
                return False
        elif r.via is not None or r.kind != "dimension" or r.name not in pre.dimensions:
            return False
    return True


def _preaggregated(pre: PreAggregation, measure: Measure, found: dict[str, Resolved]) -> Rows:
    columns: dict[str, exp.Expr] = {
        name: exp.column(METRIC_TIME if r.kind == "metric_time" else r.name, quoted=True)
        for name, r in found.items()
    }
    value = aggregation(
        measure.model_copy(update={"agg": REAGGREGATE[measure.agg]}), exp.column(measure.name, quoted=True)
    )
    return Rows(exp.to_table(pre.asset), value, found, columns, preaggregation=pre.asset)
