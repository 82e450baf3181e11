"""What ``metrics/*.yml`` declares: semantic models (a table's entities, dimensions and measures)
and the metrics computed from them, shaped like dbt MetricFlow's YAML so a project's definitions
move between the two with few edits (docs/metrics.md lists what differs).

These are the validated declarations; ``project/metrics.py`` reads the files and checks that what
they name exists, and ``sql/metrics.py`` compiles a query of them to SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Grain = Literal["day", "week", "month", "quarter", "year"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month", "quarter", "year")
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


class MetricInput(_Strict):
    """A metric a derived metric reads, under its own name or an ``alias``."""

    name: str
    alias: str | None = None


class CumulativeParams(_Strict):
    window: str | None = None
    grain_to_date: Grain | None = None


class MetricParams(_Strict):
    """``type_params`` of every metric type; which keys a type needs is checked on load."""

    measure: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    expr: str | None = None
    metrics: list[MetricInput | str] = []
    window: str | None = None
    grain_to_date: Grain | None = None
    cumulative_type_params: CumulativeParams | None = None


class Metric(_Strict):
    name: str = Field(pattern=_NAME)
    type: Literal["simple", "ratio", "derived", "cumulative"]
    type_params: MetricParams
    description: str | None = None
    label: str | None = None

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
                MetricInput(name=str(self.type_params.numerator)),
                MetricInput(name=str(self.type_params.denominator)),
            ]
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
