"""``materialize: daily`` (hourly, weekly, monthly) on a metric: a table of the metric's measures
summed per period and per categorical dimension of their semantic model, built by the project's
DAG as the model ``metrics.<metric>_<daily|…>`` after the table it reads (the planner finds that
dependency in its SQL like any model's). Queries at that grain or a coarser one, grouped and
filtered by those dimensions only, read it instead of the base table (``sql/metrics``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from gristmill.errors import ConfigError
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.metric_specs import (
    ADDITIVE,
    GRAINS,
    MATERIALIZE_GRAINS,
    Grain,
    Measure,
    Metric,
    MetricLayer,
    SemanticModel,
)
from gristmill.project.specs import ModelSpec

SCHEMA = "metrics"
REAGGREGATE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}
"""How a period's partial aggregates combine into a coarser period's."""


@dataclass(frozen=True)
class PreAggregation:
    asset: str
    grain: Grain
    model: str
    """The semantic model whose measures it holds."""
    measures: tuple[str, ...]
    dimensions: tuple[str, ...]
    """The categorical dimensions it is grouped by, as columns of the same names."""


def measures_of(layer: MetricLayer, metric: Metric) -> list[tuple[SemanticModel, Measure]]:
    """Every measure ``metric`` reads through its inputs, which its filters apply to and its
    answer is grouped by: of a conversion metric, the base measure (the conversion events take
    the base event's dimensions)."""
    params = metric.type_params.conversion_type_params
    if metric.type == "conversion" and params is not None:
        base = params.base_measure
        found = layer.measure(base if isinstance(base, str) else base.name)
        return [found] if found else []
    if metric.measure_name is not None:
        found = layer.measure(metric.measure_name)
        return [found] if found else []
    inputs = [layer.metrics[i.name] for i in metric.inputs() if i.name in layer.metrics]
    return [m for used in inputs for m in measures_of(layer, used)]


def why_not(layer: MetricLayer, metric: Metric) -> str | None:
    """Why ``metric`` cannot be pre-aggregated, or None."""
    if metric.type not in ("simple", "ratio", "derived"):
        return f"a {metric.type} metric is computed from rows, not from per-period totals"
    found = measures_of(layer, metric)
    if len({m.name for m, _ in found}) != 1:
        return "its measures come from more than one semantic model"
    time = layer.time_dimension(*found[0]) if found else None
    held = time.type_params.time_granularity if time and time.type_params else "day"
    if metric.materialize and GRAINS.index(MATERIALIZE_GRAINS[metric.materialize]) < GRAINS.index(held):
        return f"its time dimension holds {held}s, nothing finer"
    for model, measure in found:
        if measure.agg not in ADDITIVE:
            return f'measure "{measure.name}" ({measure.agg}) cannot be summed from per-period values'
        if layer.time_dimension(model, measure) != layer.time_dimension(
            *found[0]
        ) or not layer.time_dimension(model, measure):
            return "its measures need one time dimension in common"
    return None


def preaggregation_of(layer: MetricLayer, metric: Metric) -> PreAggregation:
    """What ``materialize:`` on ``metric`` builds (``why_not`` found nothing against it)."""
    assert metric.materialize is not None
    found = measures_of(layer, metric)
    model = found[0][0]
    return PreAggregation(
        asset=f"{SCHEMA}.{metric.name}_{metric.materialize}",
        grain=MATERIALIZE_GRAINS[metric.materialize],
        model=model.name,
        measures=tuple(dict.fromkeys(m.name for _, m in found)),
        dimensions=tuple(d.name for d in model.dimensions if d.type == "categorical"),
    )


def preaggregation_models(root: Path, layer: MetricLayer, taken: Collection[str]) -> dict[str, ModelSpec]:
    """The models of the layer's pre-aggregations; ``taken``: the project's other assets, which
    a pre-aggregation may not replace."""
    models = {}
    for name, pre in layer.preaggregations.items():
        location = layer.locations.get(f"metric:{name}", "metrics")
        if pre.asset in taken:
            raise ConfigError(
                f'materialize: the model {pre.asset} of metric "{name}" is already a model of the project',
                location=location,
                hint=f"rename models/{SCHEMA}/{pre.asset.split('.', 1)[1]}.sql or the metric",
            )
        found = [(layer.semantic_models[pre.model], m) for m in layer.semantic_models[pre.model].measures]
        found = [f for f in found if f[1].name in pre.measures]
        file, _, line = location.partition(":")
        models[pre.asset] = ModelSpec(
            asset=pre.asset,
            file=file,
            path=root / file,
            sql=_select(layer, found, pre).sql(PROJECT_DIALECT, pretty=True),
            sql_line=int(line or 1),
            kind="table",
            tags=("metrics",),
            description=f'Pre-aggregation of metric "{name}" per {pre.grain}.',
        )
    return models


def _select(
    layer: MetricLayer, found: list[tuple[SemanticModel, Measure]], pre: PreAggregation
) -> exp.Select:
    model, grain, dimensions = found[0][0], pre.grain, pre.dimensions
    time = layer.time_dimension(*found[0])
    assert time is not None  # why_not refused it otherwise
    moment = exp.TimestampTrunc(this=_parsed(time.sql), unit=exp.var(grain.upper()))
    columns: list[exp.Expr] = [
        exp.alias_(moment if grain == "hour" else exp.cast(moment, "DATE"), "metric_time", quoted=True)
    ]
    declared = {d.name: d for d in model.dimensions}
    columns += [exp.alias_(_parsed(declared[d].sql), d, quoted=True) for d in dimensions]
    for _, measure in found:
        agg = {"sum": exp.Sum, "count": exp.Count, "min": exp.Min, "max": exp.Max}[measure.agg]
        columns.append(exp.alias_(agg(this=_parsed(measure.sql)), measure.name, quoted=True))
    select = exp.select(*columns).from_(exp.to_table(layer.assets[model.name]))
    return select.group_by(*(exp.Literal.number(i + 1) for i in range(1 + len(dimensions))))


def _parsed(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, dialect=PROJECT_DIALECT)
