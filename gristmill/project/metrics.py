"""Reads ``metrics/*.yml``: semantic models and metrics, checked when the project loads so a
misspelt measure, dimension or model is an error naming the file and line, as for models and
sources, not a failure when someone first queries the metric."""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from gristmill._util.durations import parse_duration
from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.metric_filters import names_of, parse_metric_filter
from gristmill.project.metric_preaggregations import measures_of, preaggregation_of, why_not
from gristmill.project.metric_specs import (
    Measure,
    Metric,
    MetricLayer,
    MetricsFile,
    SemanticModel,
    UnknownName,
    filters_of,
)
from gristmill.project.validation import validated

_REF = re.compile(r"""^\s*(?:\{\{\s*)?ref\(\s*['"]([A-Za-z0-9_.]+)['"]\s*\)\s*(?:\}\})?\s*$""")


class _File:
    """One metrics file's name and parsed YAML, to point errors at lines in it."""

    def __init__(self, name: str, data: Any) -> None:
        self.name, self.data = name, data

    def where(self, *loc: int | str) -> str:
        line = yamlfile.line_of(self.data, loc)
        return f"{self.name}:{line}" if line else self.name


def load_metrics(root: Path, assets: Collection[str]) -> MetricLayer:
    """``assets``: every model and source table of the project (``<schema>.<name>``), which a
    semantic model's ``model`` must name."""
    layer = MetricLayer()
    files: list[tuple[_File, MetricsFile]] = []
    for path in sorted((root / "metrics").glob("*.y*ml")):
        name = path.relative_to(root).as_posix()
        data = yamlfile.load(path, name)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                "a metrics file is a mapping with 'semantic_models' and/or 'metrics'", location=name
            )
        file = _File(name, data)
        files.append((file, validated(MetricsFile, data, file=name, line_of=partial(yamlfile.line_of, data))))
    for file, declared in files:
        for index, model in enumerate(declared.semantic_models):
            _add_semantic_model(layer, file, index, model, assets)
    for file, declared in files:
        for index, metric in enumerate(declared.metrics):
            _unique(layer.metrics, "metric", metric.name, file.where("metrics", index, "name"), layer)
            layer.metrics[metric.name] = metric
            layer.locations[f"metric:{metric.name}"] = file.where("metrics", index)
    for file, declared in files:
        for index, metric in enumerate(declared.metrics):
            _check_metric(layer, file, index, metric)
    _check_no_cycles(layer)
    for file, declared in files:
        for index, metric in enumerate(declared.metrics):
            _check_uses(layer, file, index, metric)
    return layer


def _unique(seen: Collection[str], kind: str, name: str, where: str, layer: MetricLayer) -> None:
    if name in seen:
        first = layer.locations.get(f"{kind}:{name}", "another file")
        raise ConfigError(
            f'{kind.replace("_", " ")} "{name}" is declared twice (first at {first})', location=where
        )


def _add_semantic_model(
    layer: MetricLayer, file: _File, index: int, model: SemanticModel, assets: Collection[str]
) -> None:
    at = partial(file.where, "semantic_models", index)
    _unique(layer.semantic_models, "semantic_model", model.name, at("name"), layer)
    asset = _asset(model.model, assets, at("model"))
    dimensions = {d.name: d for d in model.dimensions}
    for kind, names in (
        ("dimension", [d.name for d in model.dimensions]),
        ("measure", [m.name for m in model.measures]),
        ("entity", [e.name for e in model.entities]),
    ):
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            raise ConfigError(
                f'{kind} "{twice}" is declared twice in semantic model "{model.name}"', location=at()
            )
    for position, dimension in enumerate(model.dimensions):
        _parses(dimension.sql, at("dimensions", position, "expr"))
        if dimension.name == "metric_time":
            raise ConfigError(
                '"metric_time" is the name queries give a measure\'s time dimension',
                location=at("dimensions", position, "name"),
                hint="name the dimension after its column",
            )
    for position, entity in enumerate(model.entities):
        _parses(entity.expr or entity.name, at("entities", position, "expr"))
    default = model.defaults.agg_time_dimension
    _time_dimension(default, dimensions, model.name, at("defaults", "agg_time_dimension"))
    for position, measure in enumerate(model.measures):
        _parses(measure.sql, at("measures", position, "expr"))
        _time_dimension(
            measure.agg_time_dimension, dimensions, model.name, at("measures", position, "agg_time_dimension")
        )
        found = layer.measure(measure.name)
        if found is not None:
            raise ConfigError(
                f'measure "{measure.name}" is already a measure of semantic model "{found[0].name}"',
                location=at("measures", position, "name"),
                hint="measure names are unique across semantic models, as in MetricFlow",
            )
    layer.semantic_models[model.name] = model
    layer.assets[model.name] = asset
    layer.locations[f"semantic_model:{model.name}"] = at()


def _asset(written: str, assets: Collection[str], where: str) -> str:
    """The asset ``model`` names: ``ref('name')`` (a model or source table name, unique in the
    project) or ``<schema>.<name>``."""
    found = _REF.match(written)
    name = found.group(1) if found else written.strip()
    if "." in name:
        if name in assets:
            return name
        matches = []
    else:
        matches = [a for a in assets if a.split(".", 1)[1] == name]
        if len(matches) == 1:
            return matches[0]
    if len(matches) > 1:
        raise ConfigError(
            f'model "{written}" names more than one asset: {", ".join(sorted(matches))}',
            location=where,
            hint="write <schema>.<name>",
        )
    hint = did_you_mean(name, [*assets, *(a.split(".", 1)[1] for a in assets)])
    raise ConfigError(
        f'model "{written}" is no model or source table of the project', location=where, hint=hint
    )


def _time_dimension(name: str | None, dimensions: dict[str, Any], model: str, where: str) -> None:
    if name is None:
        return
    dimension = dimensions.get(name)
    if dimension is None:
        hint = did_you_mean(name, dimensions)
        raise ConfigError(
            f'unknown dimension "{name}" in semantic model "{model}"', location=where, hint=hint
        )
    if dimension.type != "time":
        raise ConfigError(
            f'dimension "{name}" of semantic model "{model}" is not a time dimension', location=where
        )


def _parses(sql: str, where: str) -> exp.Expr:
    try:
        return sqlglot.parse_one(sql, dialect=PROJECT_DIALECT)
    except sqlglot.errors.ParseError as err:
        raise ConfigError(
            f'expression "{sql}" is not SQL: {err.errors[0]["description"] if err.errors else err}',
            location=where,
        ) from None


def _check_metric(layer: MetricLayer, file: _File, index: int, metric: Metric) -> None:
    at = partial(file.where, "metrics", index, "type_params")
    params = metric.type_params
    if metric.type in ("simple", "cumulative"):
        if params.measure is None:
            raise ConfigError(
                f'a {metric.type} metric needs "type_params.measure"', location=file.where("metrics", index)
            )
        found = _known_measure(layer, str(metric.measure_name), at("measure"))
        if metric.type == "cumulative":
            _check_cumulative(layer, metric, found, at)
    elif metric.type == "ratio":
        for part in ("numerator", "denominator"):
            if getattr(params, part) is None:
                raise ConfigError(
                    f'a ratio metric needs "type_params.{part}"', location=file.where("metrics", index)
                )
        for part, used in zip(("numerator", "denominator"), metric.inputs(), strict=True):
            _known_metric(layer, used.name, at(part))
    elif metric.type == "conversion":
        _check_conversion(layer, metric, at)
    else:
        _check_derived(layer, metric, at)


def _check_uses(layer: MetricLayer, file: _File, index: int, metric: Metric) -> None:
    """What needs the metrics a metric reads to be known and loop-free: its filters' names and
    whether it can be materialized."""
    _check_filters(layer, file, index, metric)
    if metric.materialize is not None:
        reason = why_not(layer, metric)
        if reason is not None:
            raise ConfigError(
                f'metric "{metric.name}" cannot be materialized: {reason}',
                location=file.where("metrics", index, "materialize"),
            )
        layer.preaggregations[metric.name] = preaggregation_of(layer, metric)


def _known_measure(layer: MetricLayer, name: str, where: str) -> tuple[SemanticModel, Measure]:
    found = layer.measure(name)
    if found is None:
        every = [m.name for s in layer.semantic_models.values() for m in s.measures]
        raise ConfigError(f'unknown measure "{name}"', location=where, hint=did_you_mean(name, every))
    return found


def _check_conversion(layer: MetricLayer, metric: Metric, at: Any) -> None:
    params = metric.type_params.conversion_type_params
    if params is None:
        raise ConfigError('a conversion metric needs "type_params.conversion_type_params"', location=at())
    where = partial(at, "conversion_type_params")
    for part in ("base_measure", "conversion_measure"):
        written = getattr(params, part)
        model, measure = _known_measure(
            layer, written if isinstance(written, str) else written.name, where(part)
        )
        if layer.time_dimension(model, measure) is None:
            raise ConfigError(
                f'measure "{measure.name}" has no time dimension to order events by', location=where(part)
            )
        if not any(e.name == params.entity for e in model.entities):
            raise ConfigError(
                f'entity "{params.entity}" is no entity of semantic model "{model.name}"',
                location=where("entity"),
                hint=did_you_mean(params.entity, [e.name for e in model.entities]),
            )
        if part == "conversion_measure" and not any(e.type == "primary" for e in model.entities):
            raise ConfigError(
                f'semantic model "{model.name}" needs a primary entity: each conversion event is'
                " counted once, for the latest base event before it",
                location=where(part),
            )
    if params.window is not None and parse_window(params.window) is None:
        raise ConfigError(f'window "{params.window}" is not a length of time', location=where("window"))
    for position, pair in enumerate(params.constant_properties):
        for part, written in (
            ("base_property", params.base_measure),
            ("conversion_property", params.conversion_measure),
        ):
            model = _known_measure(layer, written if isinstance(written, str) else written.name, where())[0]
            name = getattr(pair, part)
            if name not in [*(d.name for d in model.dimensions), *(e.name for e in model.entities)]:
                raise ConfigError(
                    f'"{name}" is no dimension or entity of semantic model "{model.name}"',
                    location=where("constant_properties", position, part),
                )


def _check_filters(layer: MetricLayer, file: _File, index: int, metric: Metric) -> None:
    """Each ``filter`` parses and names dimensions every measure it applies to can reach."""
    written = [(file.where("metrics", index, "filter"), metric.filter, measures_of(layer, metric))]
    params = metric.type_params
    for part in ("numerator", "denominator", "measure"):
        value = getattr(params, part)
        if value is not None and not isinstance(value, str):
            found = (
                [f for f in [layer.measure(value.name)] if f]
                if part == "measure"
                else measures_of(layer, layer.metrics[value.name])
            )
            written.append((file.where("metrics", index, "type_params", part), value.filter, found))
    conversion = params.conversion_type_params
    for part in ("base_measure", "conversion_measure"):
        value = getattr(conversion, part) if conversion else None
        if value is not None and not isinstance(value, str):
            where = file.where("metrics", index, "type_params", "conversion_type_params", part)
            written.append((where, value.filter, [f for f in [layer.measure(value.name)] if f]))
    for position, used in enumerate(params.metrics):
        if not isinstance(used, str) and used.filter is not None:
            where = file.where("metrics", index, "type_params", "metrics", position)
            written.append((where, used.filter, measures_of(layer, layer.metrics[used.name])))
    for where, filters, measures in written:
        for text in filters_of(filters):
            try:
                parsed = parse_metric_filter(text)
                for name in names_of(parsed):
                    for model, measure in measures:
                        layer.resolve(model, measure, name)
            except UnknownName as err:
                raise ConfigError(f"filter: {err.message}", location=where, hint=err.hint) from None
            except ValueError as err:
                raise ConfigError(f"filter: {err}", location=where) from None


def _check_cumulative(layer: MetricLayer, metric: Metric, found: Any, at: Any) -> None:
    if layer.time_dimension(*found) is None:
        raise ConfigError(
            f'measure "{found[1].name}" has no time dimension to accumulate over',
            location=at("measure"),
            hint="set defaults.agg_time_dimension (or the measure's agg_time_dimension) in its model",
        )
    if metric.window is not None and metric.grain_to_date is not None:
        raise ConfigError("a cumulative metric takes a window or a grain_to_date, not both", location=at())
    if metric.window is not None and parse_window(metric.window) is None:
        raise ConfigError(
            f'window "{metric.window}" is not a length of time',
            location=at(),
            hint="write e.g. 7 days, 1 month, 2 weeks",
        )


def parse_window(text: str) -> tuple[int, str] | None:
    """A cumulative window as ``(count, unit)`` (``7 days`` -> ``(7, "day")``); None if it is none."""
    found = re.fullmatch(r"\s*(\d+)\s*(day|week|month|quarter|year)s?\s*", text.lower())
    if found:
        return int(found.group(1)), found.group(2)
    span = parse_duration(text)
    if span is not None and span.total_seconds() % 86400 == 0 and span.total_seconds() > 0:
        return int(span.total_seconds() // 86400), "day"
    return None


def _check_derived(layer: MetricLayer, metric: Metric, at: Any) -> None:
    params = metric.type_params
    if not params.expr or not params.metrics:
        raise ConfigError(
            'a derived metric needs "type_params.expr" and "type_params.metrics"', location=at()
        )
    names = []
    for position, used in enumerate(metric.inputs()):
        _known_metric(layer, used.name, at("metrics", position))
        names.append(used.alias or used.name)
    tree = _parses(params.expr, at("expr"))
    for column in tree.find_all(exp.Column):
        if column.table or column.name not in names:
            raise ConfigError(
                f'derived metric "{metric.name}" uses "{column.sql()}", which is none of its metrics',
                location=at("expr"),
                hint=did_you_mean(column.name, names) or "list it under type_params.metrics",
            )


def _known_metric(layer: MetricLayer, name: str, where: str) -> None:
    if name not in layer.metrics:
        raise ConfigError(f'unknown metric "{name}"', location=where, hint=did_you_mean(name, layer.metrics))


def _check_no_cycles(layer: MetricLayer) -> None:
    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            loop = " -> ".join((*path[path.index(name) :], name))
            raise ConfigError(
                f"metrics read each other in a loop: {loop}", location=layer.locations.get(f"metric:{name}")
            )
        for used in layer.metrics[name].inputs():
            visit(used.name, (*path, name))

    for name, metric in layer.metrics.items():
        if metric.type in ("ratio", "derived"):
            visit(name, ())
