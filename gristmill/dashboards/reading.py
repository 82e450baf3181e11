"""Running a dashboard's blocks on the served tables, as one consistent read.

Every block runs on one pin of the serve process's tables reader (``workspace/reading.py``): one
lake snapshot, so the blocks of a page agree with each other. A sql block goes through the SQL
guard (``sql/guard.py``: one SELECT over served tables, no files, no catalogs) with its filter
placeholders turned into ``$n`` parameters the guard binds as literals built by sqlglot — a
filter value is never pasted into SQL. A metric block is compiled by the metrics layer with the
filter values as structured conditions. The page's data version is the pin's version of every
table the blocks read: the cache key of the rendered page and its ETag."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.errors import BadQuery, ConfigError, GristmillError
from gristmill.project.dashboard_specs import FILTER_REF, Dashboard, FilterSpec, MetricBlock, SqlBlock
from gristmill.project.metric_filters import Filter, parse_filter
from gristmill.sql.guard import capped, guard_select
from gristmill.sql.metrics import MetricQuery, compile_metric

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.project import Project
    from gristmill.server.reading import PinnedRead

DEFAULT_ROW_CAP = 5_000
OPTIONS_CAP = 500


@dataclass
class Planned:
    """What a page will read, before it reads: the queries, and the data version they make."""

    queries: dict[str, exp.Query]
    options: dict[str, exp.Query]
    errors: dict[str, str]
    version: str
    snapshot: str


@dataclass
class PageData:
    values: dict[str, str | None]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)
    version: str = ""
    snapshot: str = ""


def filter_values(dashboard: Dashboard, given: Mapping[str, str]) -> dict[str, str | None]:
    """Each declared filter's value: the one given (query string), else its default; an empty
    value is unset (NULL in SQL, no condition in a metric block). Other names are ignored."""
    values: dict[str, str | None] = {}
    for f in dashboard.filters:
        value = given.get(f.name, f.default)
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise BadQuery(f'filter "{f.name}": a value may not hold control characters', parameter=f.name)
        values[f.name] = value or None
    return values


def bind_sql(sql: str, values: Mapping[str, str | None]) -> tuple[str, list[object]]:
    """``sql`` with each ``{{ filters.NAME }}`` as ``$n`` and the values for them, in order."""
    params: list[object] = []

    def parameter(match: object) -> str:
        params.append(values.get(match.group(1)))  # type: ignore[attr-defined]
        return f"${len(params)}"

    return FILTER_REF.sub(parameter, sql), params


def metric_query(block: MetricBlock, values: Mapping[str, str | None]) -> MetricQuery:
    conditions: list[Filter] = []
    for text in block.where:
        dimension, _, rest = text.partition(":")
        op, _, value = rest.partition(":")
        ref = FILTER_REF.fullmatch(value.strip())
        if ref is None:
            conditions.append(parse_filter(text))
            continue
        given = values.get(ref.group(1))
        if given is None:
            continue  # an unset filter filters nothing
        parts = tuple(given.split(",")) if op in ("in", "not_in") else (given,)
        conditions.append(Filter(dimension, op, parts))  # values stay values: the compiler binds them
    return MetricQuery(block.metric, block.by, block.grain, tuple(conditions))  # type: ignore[arg-type]


def plan(
    project: Project, dashboard: Dashboard, pinned: PinnedRead, values: Mapping[str, str | None]
) -> Planned:
    served = list(pinned.relations())
    queries: dict[str, exp.Query] = {}
    options: dict[str, exp.Query] = {}
    errors: dict[str, str] = {}
    for f in dashboard.filters:
        if f.options_sql is not None:
            try:
                options[f.name] = guard_select(f.options_sql, served)
            except GristmillError as error:
                errors[f"filter:{f.name}"] = f"{dashboard.at(f.line)}: {error.message}"
    for name, block in dashboard.data.items():
        try:
            queries[name] = _query(project, block, served, values)
        except GristmillError as error:
            errors[name] = f"{dashboard.at(block.line)}: {error.message}"
    read = {name for q in [*queries.values(), *options.values()] for name in _relations(q)}
    return Planned(queries, options, errors, pinned.version(sorted(read)), pinned.snapshot)


def read(planned: Planned, pinned: PinnedRead, values: dict[str, str | None], row_cap: int) -> PageData:
    data = PageData(values, errors=dict(planned.errors), version=planned.version, snapshot=planned.snapshot)
    for name, query in planned.options.items():
        try:
            column = pinned.read(capped(query, OPTIONS_CAP)).read_all().column(0)
            data.options[name] = [str(v) for v in column.to_pylist() if v is not None]
        except GristmillError as error:
            data.errors[f"filter:{name}"] = error.message
    for name, query in planned.queries.items():
        try:
            table = pinned.read(capped(query, row_cap)).read_all()
        except GristmillError as error:
            data.errors[name] = error.message
            continue
        except Exception as error:  # the engine's own message: a column or type the SQL got wrong
            data.errors[name] = str(error).strip().splitlines()[0][:300] if str(error).strip() else "failed"
            continue
        if table.num_rows > row_cap:
            data.truncated.add(name)
            table = table.slice(0, row_cap)
        data.tables[name] = table
    return data


def check_guarded(dashboard: Dashboard, served: Collection[str]) -> None:
    """The guard's verdict on every block at once (``gristmill dashboards list``, router start):
    a refused statement is a ``file:line`` error."""
    for f in dashboard.filters:
        if f.options_sql is not None:
            _guarded(lambda sql=f.options_sql: guard_select(sql, served), dashboard, f)
    for block in dashboard.data.values():
        if isinstance(block, SqlBlock):
            sql, params = bind_sql(block.sql, {})
            try:
                guard_select(sql, served, params=params)
            except GristmillError as error:
                raise ConfigError(error.message, location=dashboard.at(block.line), hint=error.hint) from None


def _guarded(check: object, dashboard: Dashboard, f: FilterSpec) -> None:
    try:
        check()  # type: ignore[operator]
    except GristmillError as error:
        raise ConfigError(error.message, location=dashboard.at(f.line), hint=error.hint) from None


def _query(
    project: Project, block: SqlBlock | MetricBlock, served: list[str], values: Mapping[str, str | None]
) -> exp.Query:
    if isinstance(block, SqlBlock):
        sql, params = bind_sql(block.sql, values)
        return guard_select(sql, served, params=params)
    return compile_metric(project.metrics, metric_query(block, values))


def _relations(query: exp.Query) -> set[str]:
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    return {f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db or t.name not in ctes}


def page_key(dashboard: Dashboard, values: Mapping[str, str | None], version: str) -> str:
    """The ETag of a page: the file, the filter values and the data version."""
    text = "\n".join([dashboard.digest, version, *(f"{k}={v}" for k, v in sorted(values.items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
