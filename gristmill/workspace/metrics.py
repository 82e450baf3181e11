"""The metrics verbs: list a project's metrics, show the SQL of a metric query, run it on the
tables an environment serves. The CLI's ``gristmill metrics`` and the HTTP router
(``server/metrics_api.py``) both come here through ``Workspace``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import BadQuery, EngineError

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.project import Project
    from gristmill.project.metric_specs import Metric, MetricLayer
    from gristmill.runtime.session import Session
    from gristmill.sql.metrics import MetricQuery


@dataclass(frozen=True)
class MetricInfo:
    """A metric as a reader of the catalog sees it."""

    name: str
    type: str
    label: str | None
    description: str | None
    dimensions: tuple[str, ...]
    """What ``by`` and ``where`` take: ``metric_time`` (with a grain) and the dimensions and entities
    every semantic model the metric reads has."""
    grains: tuple[str, ...]
    location: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "description": self.description,
            "dimensions": list(self.dimensions),
            "grains": list(self.grains),
            "location": self.location,
        }


@dataclass(frozen=True)
class MetricAnswer:
    metric: str
    sql: str
    """The SELECT that ran, in the engine's dialect, naming tables as ``<schema>.<name>``."""
    table: pa.Table
    preaggregation: str | None = None
    """The ``materialize:`` table the answer reads instead of the base tables, if any."""


def metric_infos(project: Project) -> list[MetricInfo]:
    from gristmill.project.metric_specs import GRAINS

    layer = project.metrics
    infos = []
    for metric in layer.metrics.values():
        models = _models_of(layer, metric)
        names = [set(layer.names(m)) for m in models]
        common = sorted(set.intersection(*names)) if names else []
        timed = bool(models) and all(_has_time(m) for m in models)
        location = layer.locations.get(f"metric:{metric.name}", "")
        infos.append(
            MetricInfo(
                metric.name,
                metric.type,
                metric.label,
                metric.description,
                tuple(["metric_time"] * timed + common),
                GRAINS[_finest(layer, metric) :] if timed else (),
                location,
            )
        )
    return sorted(infos, key=lambda i: i.name)


def _models_of(layer: MetricLayer, metric: Metric) -> list[Any]:
    from gristmill.project.metric_preaggregations import measures_of

    if metric.type == "conversion":
        return [measures_of(layer, metric)[0][0]]  # grouped by the base events' dimensions
    if metric.type in ("simple", "cumulative"):
        return [model for model, _ in measures_of(layer, metric)]
    return [m for i in metric.inputs() for m in _models_of(layer, layer.metrics[i.name])]


def _finest(layer: MetricLayer, metric: Metric) -> int:
    """The index in ``GRAINS`` of the finest grain every time the metric reads holds."""
    from gristmill.project.metric_preaggregations import measures_of
    from gristmill.project.metric_specs import GRAINS

    times = [layer.time_dimension(model, measure) for model, measure in measures_of(layer, metric)]
    held = [t.type_params.time_granularity if t.type_params else "day" for t in times if t]
    return max((GRAINS.index(g) for g in held), default=GRAINS.index("day"))


def _has_time(model: Any) -> bool:
    return model.defaults.agg_time_dimension is not None or any(m.agg_time_dimension for m in model.measures)


def ask(
    name: str,
    by: Sequence[str] = (),
    grain: str | None = None,
    where: Sequence[str] = (),
) -> MetricQuery:
    """A metric query from what a user typed (``where``: ``dimension:op:value`` conditions)."""
    from gristmill.sql.metrics import MetricQuery, parse_filter

    dimensions = tuple(d.strip() for part in by for d in part.split(",") if d.strip())
    return MetricQuery(name, dimensions, grain or None, tuple(parse_filter(w) for w in where))  # type: ignore[arg-type]


def metric_sql(project: Project, query: MetricQuery, dialect: str | None = None) -> str:
    """The SELECT for ``query`` in ``dialect`` (else the project engine's)."""
    from gristmill.sql.metrics import compile_metric
    from gristmill.sql.render import render

    return render(compile_metric(project.metrics, query), dialect or project.settings.engine.kind)


def preaggregation_of(project: Project, query: MetricQuery) -> str | None:
    """The ``materialize:`` table ``query`` reads, if any."""
    from sqlglot import exp

    from gristmill.sql.metrics import compile_metric

    built = {p.asset for p in project.metrics.preaggregations.values()}
    read = {f"{t.db}.{t.name}" for t in compile_metric(project.metrics, query).find_all(exp.Table)}
    return next(iter(sorted(read & built)), None)


def answer(session: Session, query: MetricQuery, env: str, *, run: bool = True) -> MetricAnswer:
    """Run ``query`` on the tables ``env`` serves (the environment's views, a target's prefix:
    ``runtime.published.query`` points the assets' names at them); ``run=False``: its SQL only."""
    from dataclasses import replace

    import pyarrow as pa

    from gristmill.runtime.published import query as run_query

    sql, pre = metric_sql(session.project, query), preaggregation_of(session.project, query)
    if not run:
        return MetricAnswer(query.metric, sql, pa.table({}), pre)
    try:
        table = run_query(session, sql, env)
    except EngineError:
        if pre is not None:  # not built in this environment yet: the base tables answer
            return answer(session, replace(query, preaggregated=False), env, run=run)
        if query.where and _runs_unfiltered(session, query, env):
            raise BadQuery(  # the engine's message would quote SQL the user never wrote
                "a filter value does not fit its dimension's type",
                parameter="where",
                hint="give each dimension a value of its type: a date as 2024-01-31, a number as 12.5",
            ) from None
        raise
    return MetricAnswer(query.metric, sql, table, pre)


def _runs_unfiltered(session: Session, query: MetricQuery, env: str) -> bool:
    """Whether the query runs without its filters: then they made it fail (a value the engine
    cannot convert to its dimension's type), not a missing table."""
    from dataclasses import replace

    from gristmill.runtime.published import query as run_query

    try:
        run_query(session, metric_sql(session.project, replace(query, where=())), env)
    except EngineError:
        return False
    return True
