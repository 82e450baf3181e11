"""``type: conversion`` (MetricFlow's): of the base events (rows of the base measure's table),
those followed by a conversion event (a row of the conversion measure's table) of the same
entity, at or after the base event and within the window. Each conversion event counts once, for
the latest base event before it, and is grouped by that base event's dimensions and time;
``conversion_rate`` divides the conversions by the base measure."""

from __future__ import annotations

from sqlglot import exp

from gristmill.project.metric_specs import MeasureInput, Metric, SemanticModel
from gristmill.project.metrics import parse_window
from gristmill.sql.metrics.parts import Blocks, Conditions, condition, parsed, ratio
from gristmill.sql.metrics.rows import aggregation, expression, qualified, time_of
from gristmill.sql.metrics.spine import interval

_BASE, _CONVERSION = "gm_b", "gm_c"
_VALUE, _RANK = "gm_conversion", "gm_rank"


def conversion_block(blocks: Blocks, metric: Metric, filters: Conditions) -> str:
    params = metric.type_params.conversion_type_params
    assert params is not None  # checked when the project loaded
    base_in, conversion_in = (
        p if isinstance(p, MeasureInput) else MeasureInput(name=p)
        for p in (params.base_measure, params.conversion_measure)
    )
    layer = blocks.layer
    base_found, conversion_found = layer.measure(base_in.name), layer.measure(conversion_in.name)
    assert base_found is not None and conversion_found is not None
    (base_model, base), (conversion_model, conversion) = base_found, conversion_found
    base_filters = (*blocks.where, *filters, *parsed(base_in.filter))
    base_name = blocks.cte(blocks.aggregate(base_model, base, (*filters, *parsed(base_in.filter)), False))
    # the base events the filters keep, every column of them, then each conversion event after one
    rows = blocks.rows(base_model, base, base_filters, False)
    kept = exp.select(exp.Star()).from_(rows.source)
    conditions = [condition(rows, f) for f in base_filters]
    if conditions:
        kept = kept.where(exp.and_(*conditions))
    entity_of = {e.name: e for e in base_model.entities}[params.entity]
    other = {e.name: e for e in conversion_model.entities}[params.entity]
    primary = next(e for e in conversion_model.entities if e.type == "primary")
    base_time = qualified(time_of(layer, base_model, base), _BASE)
    conversion_time = qualified(time_of(layer, conversion_model, conversion), _CONVERSION)
    on: exp.Expr = exp.and_(
        exp.EQ(
            this=qualified(expression(entity_of.expr or entity_of.name), _BASE),
            expression=qualified(expression(other.expr or other.name), _CONVERSION),
        ),
        exp.GTE(this=conversion_time, expression=base_time),
    )
    for pair in params.constant_properties:  # e.g. the same product viewed and bought
        on = exp.and_(
            on,
            exp.EQ(
                this=qualified(_own(base_model, pair.base_property), _BASE),
                expression=qualified(_own(conversion_model, pair.conversion_property), _CONVERSION),
            ),
        )
    if params.window is not None:
        count, unit = parse_window(params.window) or (1, "day")
        on = exp.and_(
            on,
            exp.LT(
                this=conversion_time.copy(),
                expression=exp.Add(this=base_time.copy(), expression=interval(count, unit)),
            ),
        )
    latest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[qualified(expression(primary.expr or primary.name), _CONVERSION)],
        order=exp.Order(expressions=[exp.Ordered(this=base_time.copy(), desc=True)]),
    )
    paired = (
        exp.select(
            exp.Column(this=exp.Star(), table=exp.to_identifier(_BASE)),
            exp.alias_(qualified(expression(conversion.sql), _CONVERSION), _VALUE),
            exp.alias_(latest, _RANK),
        )
        .from_(exp.Subquery(this=kept, alias=exp.TableAlias(this=exp.to_identifier(_BASE))))
        .join(exp.to_table(layer.assets[conversion_model.name], alias=_CONVERSION), on=on)
    )
    conversion_rows = parsed(conversion_in.filter)
    if conversion_rows:
        conversion_kept = blocks.rows(conversion_model, conversion, conversion_rows, False)
        paired = paired.where(
            exp.and_(*(qualified(condition(conversion_kept, f), _CONVERSION) for f in conversion_rows))
        )
    columns = [exp.alias_(rows.expr(k, blocks.grain), k, quoted=True) for k in blocks.keys]
    counted = exp.select(*columns, exp.alias_(aggregation(conversion, exp.column(_VALUE)), "value"))
    counted = counted.from_(
        exp.Subquery(this=paired, alias=exp.TableAlias(this=exp.to_identifier("gm_paired")))
    )
    counted = counted.where(exp.EQ(this=exp.column(_RANK), expression=exp.Literal.number(1)))
    if columns:
        counted = counted.group_by(*(exp.Literal.number(i + 1) for i in range(len(columns))))
    conversions = blocks.cte(counted)
    if params.calculation == "conversions":
        return conversions
    converted = exp.func("COALESCE", exp.column("value", table=conversions), exp.Literal.number(0))
    value = ratio(converted, exp.column("value", table=base_name))  # no conversion: a rate of 0
    return blocks.cte(blocks.joined([conversions, base_name], value))


def _own(model: SemanticModel, name: str) -> exp.Expr:
    """A dimension or entity of ``model`` by name (checked when the project loaded)."""
    for dimension in model.dimensions:
        if dimension.name == name:
            return expression(dimension.sql)
    entity = next(e for e in model.entities if e.name == name)
    return expression(entity.expr or entity.name)
