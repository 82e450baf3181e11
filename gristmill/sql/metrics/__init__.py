"""Compiles a metric query (a metric, the dimensions to group by, a time grain, filters) to one
SELECT as a sqlglot tree, rendered for the engine by ``sql.render``.

Every metric becomes a block of rows keyed by the query's dimensions with one ``value``: a simple
metric aggregates its measure over its table (joined to other semantic models through entities
when a dimension lives there, ``rows.py``), or over its ``materialize:`` table when the query
allows; a cumulative one joins each period of a generated time spine to the rows of its window
(``spine.py``); a conversion one pairs base and conversion events (``conversion.py``); a ratio or
derived metric joins its inputs' blocks on the keys. Filter values are sqlglot literals compared
with a dimension the project declares: they are data, never SQL."""

from gristmill.project.metric_filters import OPERATORS, Filter, parse_filter
from gristmill.sql.metrics.query import METRIC_TIME, MetricQuery, compile_metric

__all__ = ["METRIC_TIME", "OPERATORS", "Filter", "MetricQuery", "compile_metric", "parse_filter"]
