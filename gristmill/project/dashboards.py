"""``dashboards/*.md`` of a project, read and checked when the project loads, like models and
metrics: a block reading a table the project does not have, an unknown metric or grain, a chart
naming a column its metric block does not return — each a ``file:line`` error.

Imported by the project loader, so it reads only the project's names (assets, metrics), never
the layers above; the SQL guard's own rules run where the blocks run (``reading.py``) and on
``gristmill dashboards list``."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from gristmill.errors import ConfigError
from gristmill.project.dashboard_specs import FILTER_REF, Dashboard, MetricBlock, SqlBlock, parse_dashboard

FOLDER = "dashboards"
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_null", "not_null")


def load_dashboards(root: Path, assets: Collection[str], metrics: Collection[str]) -> dict[str, Dashboard]:
    """``assets``: every model and source table (``schema.name``); ``metrics``: metric names."""
    served = {a.lower() for a in assets}
    found: dict[str, Dashboard] = {}
    for path in sorted((root / FOLDER).glob("*.md")):
        location = path.relative_to(root).as_posix()
        dashboard = parse_dashboard(path.read_text(encoding="utf-8"), location, path.stem)
        check_dashboard(dashboard, served, set(metrics))
        found[dashboard.name] = dashboard
    return found


def check_dashboard(dashboard: Dashboard, served: Collection[str], metrics: Collection[str]) -> None:
    for f in dashboard.filters:
        if f.options_sql is not None:
            _check_sql(f.options_sql, served, dashboard.at(f.line))
    for block in dashboard.data.values():
        at = dashboard.at(block.line)
        if isinstance(block, SqlBlock):
            _check_sql(FILTER_REF.sub("NULL", block.sql), served, at)
        else:
            _check_metric(block, metrics, at)
    data = dashboard.data
    for chart in dashboard.charts:
        block = data[chart.data]
        if not isinstance(block, MetricBlock):
            continue  # a SELECT's columns are known when it runs; the page says which are missing
        for column in (chart.x, chart.y, chart.color):
            if column is not None and column not in block.columns:
                raise ConfigError(
                    f'chart column "{column}" is not returned by metric block "{block.name}"',
                    location=dashboard.at(chart.line),
                    hint=f"it returns {', '.join(block.columns)}",
                )


def _check_sql(sql: str, served: Collection[str], at: str) -> None:
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (ParseError, TokenError) as error:
        first = str(error).strip().splitlines()[0][:200]
        raise ConfigError(f"the SQL does not parse: {first}", location=at) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ConfigError("a sql block is one SELECT", location=at, hint="dashboards only read")
    query = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise ConfigError("table functions are not allowed in a dashboard", location=at)
        name = f"{table.db}.{table.name}".lower() if table.db else table.name.lower()
        if table.db and name not in served:
            raise ConfigError(f'"{table.db}.{table.name}" is not a table of this project', location=at)
        if not table.db and name not in ctes:
            raise ConfigError(f'table "{table.name}" needs its schema', location=at, hint="schema.table")


def _check_metric(block: MetricBlock, metrics: Collection[str], at: str) -> None:
    if block.metric not in metrics:
        raise ConfigError(
            f'unknown metric "{block.metric}"',
            location=at,
            hint=f"metrics: {', '.join(sorted(metrics)) or 'none'}",
        )
    if block.grain is not None and block.grain not in GRAINS:
        raise ConfigError(f'unknown grain "{block.grain}"', location=at, hint=f"one of {', '.join(GRAINS)}")
    for text in block.where:
        dimension, _, rest = text.partition(":")
        op = rest.partition(":")[0]
        if not dimension or op not in OPERATORS:
            raise ConfigError(
                f'where "{text}" is not dimension:operator:value',
                location=at,
                hint=f"operators: {', '.join(OPERATORS)}",
            )
