"""What ``metrics/*.yml`` declares: semantic models (a table's entities, dimensions and measures)
and the metrics computed from them, shaped like dbt MetricFlow's YAML so a project's definitions
move between the two with few edits (docs/metrics.md lists what differs).

These are the validated declarations; ``project/metrics.py`` reads the files and checks that what
they name exists, and ``sql/metrics.py`` compiles a query of them to SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Grain = Literal["hour", "day", "week", "month", "quarter", "year"]
GRAINS: tuple[Grain, ...] = ("hour", "day", "week", "month", "quarter", "year")
Materialize = Literal["hourly", "daily", "weekly", "monthly"]
MATERIALIZE_GRAINS: dict[str, Grain] = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
}
ADDITIVE = ("sum", "count", "min", "max")
"""Aggregations whose result over a period can be computed from their results over its parts
(``count`` by summing the counts): what a pre-aggregation can hold."""
Aggregation = Literal["sum", "count", "count_distinct", "avg", "min", "max"]
_NAME = r"^[a-z_][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Entity(_Strict):
    """A key of the table (MetricFlow's entity): ``primary`` names the table's grain."""

    name: str = Field(pattern=_NAME)
    type: Literal["primary", "unique", "foreign", "natural"]
    expr: str | None = None
    description: str | None = None


class TimeParams(_Strict):
    time_granularity: Grain = "day"


class Dimension(_Strict):
    """A column (or expression) to group and filter by; ``time`` dimensions take a grain."""

    name: str = Field(pattern=_NAME)
    type: Literal["categorical", "time"]
    expr: str | None = None
    description: str | None = None
    label: str | None = None
    type_params: TimeParams | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name


class Measure(_Strict):
    """An aggregation of a column or expression over the table's rows."""

    name: str = Field(pattern=_NAME)
    agg: Aggregation
    expr: str | None = None
    description: str | None = None
    label: str | None = None
    agg_time_dimension: str | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name


class Defaults(_Strict):
    agg_time_dimension: str | None = None


class SemanticModel(_Strict):
    """A table (a model or source asset) described for metrics."""

    name: str = Field(pattern=_NAME)
    model: str
    """``ref('fct_orders')`` as in dbt, or the asset's ``<schema>.<name>``."""
    description: str | None = None
    defaults: Defaults = Defaults()
    entities: list[Entity] = []
    dimensions: list[Dimension] = []
    measures: list[Measure] = []


Filters = str | list[str] | None
"""A metric's ``filter``: conditions that must all hold, each MetricFlow's Jinja-ish SQL
(``{{ Dimension('customer__country') }} = 'DE'``) or the structured ``country:eq:DE``."""


class MetricInput(_Strict):
    """A metric a ratio or derived metric reads, under its own name or an ``alias``, optionally
    over only the rows its ``filter`` keeps."""

    name: str
    alias: str | None = None
    filter: Filters = None


class MeasureInput(_Strict):
    """MetricFlow's long form of a simple metric's measure: periods without rows shown when
    ``join_to_timespine``, their value (and any missing one) ``fill_nulls_with``."""

    name: str
    filter: Filters = None
    fill_nulls_with: int | float | None = None
    join_to_timespine: bool = False


class ConstantProperty(_Strict):
    """A dimension (or entity) a conversion event must share with its base event."""

    base_property: str
    conversion_property: str


class ConversionParams(_Strict):
    """``type: conversion``: of the base events (rows of ``base_measure``), those followed by a
    conversion event (a row of ``conversion_measure``) for the same ``entity`` within ``window``."""

    base_measure: str | MeasureInput
    conversion_measure: str | MeasureInput
    entity: str
    window: str | None = None
    calculation: Literal["conversion_rate", "conversions"] = "conversion_rate"
    constant_properties: list[ConstantProperty] = []


class CumulativeParams(_Strict):
    window: str | None = None
    grain_to_date: Grain | None = None


class MetricParams(_Strict):
    """``type_params`` of every metric type; which keys a type needs is checked on load."""

    measure: str | MeasureInput | None = None
    numerator: str | MetricInput | None = None
    denominator: str | MetricInput | None = None
    expr: str | None = None
    metrics: list[MetricInput | str] = []
    window: str | None = None
    grain_to_date: Grain | None = None
    cumulative_type_params: CumulativeParams | None = None
    conversion_type_params: ConversionParams | None = None

    @property
    def measure_input(self) -> MeasureInput | None:
        if self.measure is None:
            return None
        return self.measure if isinstance(self.measure, MeasureInput) else MeasureInput(name=self.measure)


def filters_of(written: Filters) -> tuple[str, ...]:
    if written is None:
        return ()
    return (written,) if isinstance(written, str) else tuple(written)


class Metric(_Strict):
    name: str = Field(pattern=_NAME)
    type: Literal["simple", "ratio", "derived", "cumulative", "conversion"]
    type_params: MetricParams
    description: str | None = None
    label: str | None = None
    filter: Filters = None
    """Conditions on the rows every measure the metric reads is computed over."""
    materialize: Materialize | None = None
    """Build a pre-aggregation of the metric's measures at this grain as a model of the project."""

    @property
    def measure_name(self) -> str | None:
        found = self.type_params.measure_input
        return found.name if found else None

    @property
    def window(self) -> str | None:
        nested = self.type_params.cumulative_type_params
        return (nested.window if nested else None) or self.type_params.window

    @property
    def grain_to_date(self) -> Grain | None:
        nested = self.type_params.cumulative_type_params
        return (nested.grain_to_date if nested else None) or self.type_params.grain_to_date

    def inputs(self) -> list[MetricInput]:
        """The metrics a ratio or derived metric reads."""
        if self.type == "ratio":
            return [
                p if isinstance(p, MetricInput) else MetricInput(name=str(p))
                for p in (self.type_params.numerator, self.type_params.denominator)
            ]
        if self.type in ("simple", "cumulative", "conversion"):
            return []
        return [m if isinstance(m, MetricInput) else MetricInput(name=m) for m in self.type_params.metrics]


class MetricsFile(_Strict):
    semantic_models: list[SemanticModel] = []
    metrics: list[Metric] = []


@dataclass(frozen=True)
class MetricLayer:
    """Every semantic model and metric of a project, checked against each other and its assets."""

    semantic_models: dict[str, SemanticModel] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)
    """Semantic model name -> the asset (``<schema>.<name>``) it reads."""
    locations: dict[str, str] = field(default_factory=dict)
    """``metric:<name>`` / ``semantic_model:<name>`` -> ``file:line`` of its declaration."""
    preaggregations: dict[str, Any] = field(default_factory=dict)
    """Metric name -> its ``materialize:`` table (``project.metric_preaggregations.PreAggregation``)."""

    def measure(self, name: str) -> tuple[SemanticModel, Measure] | None:
        for model in self.semantic_models.values():
            for measure in model.measures:
                if measure.name == name:
                    return model, measure
        return None

    def time_dimension(self, model: SemanticModel, measure: Measure) -> Dimension | None:
        """The time dimension a measure is counted at (``metric_time``)."""
        name = measure.agg_time_dimension or model.defaults.agg_time_dimension
        return next((d for d in model.dimensions if d.name == name and d.type == "time"), None)

    def entity_models(self, entity: str) -> list[SemanticModel]:
        """The semantic models where ``entity`` identifies a row (primary or unique): the side a
        join through it may reach without multiplying the measure's rows."""
        return [
            m
            for m in self.semantic_models.values()
            if any(e.name == entity and e.type in ("primary", "unique") for e in m.entities)
        ]

    def resolve(self, model: SemanticModel, measure: Measure, name: str) -> Resolved:
        """What a dimension name of a query or filter means for ``measure`` of ``model``: its own
        dimension or entity, ``metric_time``, or a dimension of another semantic model reached
        through an entity (``customer__country``; plain ``country`` when only one model has it).
        Raises ``UnknownName`` saying why not."""
        base, grain = name, None
        head_grain = name.rpartition("__")
        if head_grain[1] and head_grain[2] in GRAINS:
            base, grain = head_grain[0], head_grain[2]
        own = {e.name: e for e in model.entities}
        if base == "metric_time":
            return Resolved(model, "metric_time", base, grain)
        head, _, tail = base.partition("__")
        if tail:
            return self._prefixed(model, measure, name, head, tail, grain)
        if any(d.name == base for d in model.dimensions):
            return self._checked(Resolved(model, "dimension", base, grain), name)
        if base in own:
            return self._checked(Resolved(model, "entity", base, grain), name)
        reachable = [
            (entity, other)
            for entity in model.entities
            for other in self.entity_models(entity.name)
            if other.name != model.name and any(d.name == base for d in other.dimensions)
        ]
        if len(reachable) > 1:
            options = ", ".join(f"{e.name}__{base}" for e, _ in reachable)
            raise UnknownName(
                f'"{name}" is a dimension of several semantic models', f"write one of {options}"
            )
        if reachable:
            entity, other = reachable[0]
            return self._checked(Resolved(other, "dimension", base, grain, via=entity), name)
        raise self._unknown(model, name)

    def _prefixed(
        self, model: SemanticModel, measure: Measure, name: str, head: str, tail: str, grain: Grain | None
    ) -> Resolved:
        own = {e.name: e for e in model.entities}
        entity = own.get(head)
        if entity is None:
            raise self._unknown(model, name)
        if entity.type in ("primary", "unique") or not self.entity_models(head):
            if any(d.name == tail for d in model.dimensions):
                return self._checked(Resolved(model, "dimension", tail, grain), name)
            if tail in own:
                return self._checked(Resolved(model, "entity", tail, grain), name)
        for other in self.entity_models(head):
            if other.name != model.name and any(d.name == tail for d in other.dimensions):
                return self._checked(Resolved(other, "dimension", tail, grain, via=entity), name)
        fans = [
            m.name
            for m in self.semantic_models.values()
            if m.name != model.name
            and any(e.name == head for e in m.entities)
            and any(d.name == tail for d in m.dimensions)
        ]
        if fans:
            raise UnknownName(
                f'"{name}": joining semantic model "{fans[0]}" on entity "{head}" would repeat the rows'
                f' of measure "{measure.name}" (a fan-out join)',
                f'"{head}" must be a primary or unique entity of "{fans[0]}"',
            )
        raise self._unknown(model, name)

    def _checked(self, found: Resolved, name: str) -> Resolved:
        if found.grain is None:
            return found
        dimension = next((d for d in found.model.dimensions if d.name == found.name), None)
        if dimension is None or dimension.type != "time":
            raise UnknownName(f'"{found.name}" is not a time dimension: it has no {found.grain}')
        return found

    def _unknown(self, model: SemanticModel, name: str) -> UnknownName:
        known = ["metric_time", *self.names(model)]
        return UnknownName(
            f'"{name}" is no dimension of semantic model "{model.name}"', "known: " + ", ".join(known)
        )

    def names(self, model: SemanticModel) -> list[str]:
        """The dimension names a measure of ``model`` can be grouped by, reached ones included."""
        own = [d.name for d in model.dimensions] + [e.name for e in model.entities]
        reached = [
            f"{e.name}__{d.name}"
            for e in model.entities
            for other in self.entity_models(e.name)
            if other.name != model.name
            for d in other.dimensions
        ]
        return own + reached


@dataclass(frozen=True)
class Resolved:
    """A name a query groups or filters by, found: ``kind`` ``name`` of ``model`` (at ``grain``),
    reached from the measure's model through its entity ``via`` (None: the measure's own)."""

    model: SemanticModel
    kind: Literal["dimension", "entity", "metric_time"]
    name: str
    grain: Grain | None = None
    via: Entity | None = None


class UnknownName(ValueError):
    """A dimension name that means nothing for a measure; ``hint`` says what would."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint
