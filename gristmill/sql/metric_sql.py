"""Metrics as relations for SQL clients: BI tools connected through the PostgreSQL wire door (or
``POST /api/v1/sql``) read a ``metrics`` schema in which each metric is a relation whose columns
are its dimensions, its time at each grain (``metric_time__month``) and the metric itself.

Nothing is stored there: a query naming ``metrics.revenue`` is rewritten, on its sqlglot tree,
into the metric layer's compiled query (``gristmill.sql.metrics.compile_metric``) for exactly the
dimensions it reads, and the result is guarded like any other statement (the compiled query reads
served tables only). So::

    SELECT country, metric_time__month, revenue FROM metrics.revenue
    WHERE country IN ('DE', 'FR') GROUP BY country, metric_time__month

runs ``MetricQuery("revenue", by=("country",), grain="month", where=(country:in:DE,FR,))`` and
answers what ``gristmill metrics query revenue --by country --grain month --where …`` answers.
Conditions on a dimension that the metric layer can express (``=``, ``<>``, ``<`` …, ``IN``,
``NOT IN``, ``IS [NOT] NULL`` against literals) are handed to it, so a dimension filtered but not
selected is filtered *before* the metric is computed; anything else stays an ordinary ``WHERE``
over the metric's rows. A ``GROUP BY`` of the selected dimensions is what the metric already is,
so it is dropped when the metric column is read bare (a ratio cannot be summed again);
``sum(revenue) … GROUP BY country`` keeps it and is valid SQL over one row per group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from gristmill.errors import GristmillError, SqlRefused
from gristmill.project.metric_specs import GRAINS, MetricLayer
from gristmill.sql.functions import truncate_to
from gristmill.sql.metrics import METRIC_TIME, Filter, MetricQuery, compile_metric

METRICS_SCHEMA = "metrics"
_GRAIN_ORDER: tuple[str, ...] = GRAINS
TIME_PREFIX = f"{METRIC_TIME}__"
_HINT = "select the metric's dimensions by name; the catalog lists them (\\d metrics.NAME)"


@dataclass(frozen=True)
class MetricRelation:
    """A metric as a relation: ``dimensions`` (categorical), ``grains`` (one time column each)."""

    name: str
    dimensions: tuple[str, ...]
    grains: tuple[str, ...]

    @property
    def time_columns(self) -> tuple[str, ...]:
        return tuple(TIME_PREFIX + grain for grain in self.grains)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.dimensions, *self.time_columns, self.name)


def metric_relations(infos: Iterable[tuple[str, Iterable[str], Iterable[str]]]) -> dict[str, MetricRelation]:
    """Relations from (metric name, dimensions, grains) as the metrics catalog lists them."""
    found: dict[str, MetricRelation] = {}
    for name, dimensions, grains in infos:
        plain = tuple(d for d in dimensions if d != METRIC_TIME)
        found[name.lower()] = MetricRelation(name, plain, tuple(grains))
    return found


def reads_metrics(tree: exp.Expr) -> bool:
    return any(t.db.lower() == METRICS_SCHEMA for t in tree.find_all(exp.Table))


def rewrite_metrics(
    tree: exp.Query, layer: MetricLayer, relations: Mapping[str, MetricRelation]
) -> exp.Query:
    """``tree`` with every ``metrics.<name>`` it reads replaced by the metric's compiled query
    (aliased as the relation was, so qualified columns still resolve); ``SqlRefused`` when the
    relation is unknown, read with ``*`` or joined."""
    for table in list(tree.find_all(exp.Table)):
        if table.db.lower() != METRICS_SCHEMA or table.args.get("catalog"):
            continue
        relation = relations.get(table.name.lower())
        if relation is None:
            known = ", ".join(sorted(r.name for r in relations.values())) or "none"
            raise SqlRefused(f'"metrics.{table.name}" is not a metric', hint=f"metrics served: {known}")
        select = table.parent.parent if isinstance(table.parent, exp.From) else None
        if not isinstance(select, exp.Select) or select.args.get("joins"):
            raise SqlRefused(
                f"metrics.{relation.name} can only be read alone: SELECT … FROM metrics.{relation.name}",
                hint="join its result in an outer query (WITH m AS (SELECT … FROM metrics.…) …)",
            )
        compiled = _compile(select, table, relation, layer)
        table.replace(compiled.subquery(table.alias_or_name))
    return tree


def _compile(
    select: exp.Select, table: exp.Table, relation: MetricRelation, layer: MetricLayer
) -> exp.Select:
    names = {table.alias_or_name.lower(), table.name.lower()}
    if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in select.expressions):
        if len(select.expressions) > 1:
            raise SqlRefused(f"metrics.{relation.name}: * with other columns is not answered", hint=_HINT)
        # every column: the metric by every dimension at the day grain, the coarser grains as labels
        select.set("expressions", [exp.column(c, quoted=True) for c in relation.columns])
    filters = _push_down(select, relation, names)
    aliases = {p.alias.lower() for p in select.expressions if p.alias}
    used: list[str] = []
    for column in _own_columns(select):
        name = column.name.lower()
        if column.table and column.table.lower() not in names:
            continue
        if column.text("db").lower() == METRICS_SCHEMA:  # "metrics"."revenue"."country": the subquery's
            column.set("db", None)
        if name not in {c.lower() for c in relation.columns}:
            if name in aliases:
                continue  # ORDER BY an output name
            raise SqlRefused(
                f'metrics.{relation.name} has no column "{column.name}"',
                hint=f"its columns: {', '.join(relation.columns)}",
            )
        if name not in used:
            used.append(name)
    # the finest grain asked is the metric's; coarser time columns label its rows
    grains = sorted(
        (c.removeprefix(TIME_PREFIX) for c in used if c.startswith(TIME_PREFIX)), key=_GRAIN_ORDER.index
    )
    by = tuple(d for d in relation.dimensions if d.lower() in used)
    query = MetricQuery(relation.name, by, grains[0] if grains else None, tuple(filters))  # type: ignore[arg-type]
    try:
        compiled = compile_metric(layer, query)
    except GristmillError as error:
        raise SqlRefused(error.message, hint=error.hint) from None
    if grains:  # compile_metric names the time key metric_time; the relation names its grain
        first = compiled.expressions[0]
        labels = [exp.alias_(truncate_to(g, first.copy()), TIME_PREFIX + g, quoted=True) for g in grains[1:]]
        compiled.set(
            "expressions",
            [exp.alias_(first, TIME_PREFIX + grains[0], quoted=True), *labels, *compiled.expressions[1:]],
        )
    _drop_redundant_group(select, relation)
    return compiled


def _own_columns(select: exp.Select) -> list[exp.Column]:
    """The columns of ``select`` itself, not of the subqueries inside it."""
    found = []
    for node in select.walk(prune=lambda n: n is not select and isinstance(n, (exp.Select, exp.Subquery))):
        if isinstance(node, exp.Column) and not node.is_star:
            found.append(node)
    return found


_FLIPPED = {exp.EQ: "eq", exp.NEQ: "ne", exp.GT: "lt", exp.GTE: "lte", exp.LT: "gt", exp.LTE: "gte"}
_OPS = {exp.EQ: "eq", exp.NEQ: "ne", exp.GT: "gt", exp.GTE: "gte", exp.LT: "lt", exp.LTE: "lte"}


def _push_down(select: exp.Select, relation: MetricRelation, names: set[str]) -> list[Filter]:
    """Take the WHERE conditions the metric layer can apply itself out of ``select``."""
    where = select.args.get("where")
    if where is None:
        return []
    dimensions = {d.lower(): d for d in relation.dimensions}
    kept, filters = [], []
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found = _as_filter(condition, dimensions, names)
        if found is None:
            kept.append(condition)
        else:
            filters.append(found)
    select.set("where", exp.Where(this=exp.and_(*kept)) if kept else None)
    return filters


def _as_filter(condition: exp.Expr, dimensions: Mapping[str, str], names: set[str]) -> Filter | None:
    def dimension(node: exp.Expr) -> str | None:
        if isinstance(node, exp.Column) and (not node.table or node.table.lower() in names):
            return dimensions.get(node.name.lower())
        return None

    def value(node: exp.Expr) -> str | None:
        return node.name if isinstance(node, exp.Literal) else None

    negated = isinstance(condition, exp.Not)
    inner = condition.this if negated else condition
    if isinstance(inner, exp.Paren):
        return None
    if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
        name = dimension(inner.this)
        return Filter(name, "not_null" if negated else "is_null") if name else None
    if isinstance(inner, exp.In) and not inner.args.get("query"):
        name, values = dimension(inner.this), [value(v) for v in inner.expressions]
        if name and values and all(v is not None for v in values):
            return Filter(name, "not_in" if negated else "in", tuple(v for v in values if v is not None))
        return None
    if negated or type(inner) not in _OPS:
        return None
    assert isinstance(inner, exp.Binary)
    left, right = dimension(inner.this), value(inner.expression)
    if left and right is not None:
        return Filter(left, _OPS[type(inner)], (right,))
    right_dim, left_value = dimension(inner.expression), value(inner.this)
    if right_dim and left_value is not None:
        return Filter(right_dim, _FLIPPED[type(inner)], (left_value,))
    return None


def _drop_redundant_group(select: exp.Select, relation: MetricRelation) -> None:
    group = select.args.get("group")
    if group is None:
        return
    metric = relation.name.lower()
    for column in _own_columns(select):
        if column.name.lower() == metric and column.find_ancestor(exp.AggFunc) is not None:
            return  # sum(revenue) … GROUP BY country: valid as written
    select.set("group", None)
