"""Column-level lineage, computed once per model from its qualified AST.

For every output column the query is pruned to what that column needs (sqlglot's projection
pushdown removes every unused projection from every CTE and subquery, keeping filters, joins and
groupings). The pruned query's normalised text and the upstream columns and tables it still
reads are the column's *trace*. The row set gets a trace of its own (the query pruned to no
column at all). Fingerprints built from traces change for exactly the columns a change can
reach: editing one expression leaves every other column's trace as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.pushdown_projections import pushdown_projections
from sqlglot.optimizer.scope import traverse_scope

from gristmill.sql.parse import DIALECT, ParsedModel, asset_name
from gristmill.sql.validate import qualify_model

ROWS = ""
"""The trace key of the row set: which rows exist depends on filters, joins and groupings."""


@dataclass(frozen=True)
class Trace:
    sql: str
    """Digest of the pruned, normalised query this column (or the row set) needs."""
    reads: tuple[tuple[str, str], ...]
    """Upstream (asset, column) pairs it reads, in filters and joins as well as in its expression."""
    tables: tuple[str, ...]
    """Upstream assets whose rows it depends on."""


@dataclass(frozen=True)
class Analysis:
    """What a model reads and produces, column by column."""

    columns: tuple[str, ...] | None
    """Output columns, or None when they cannot be known before running."""
    traces: Mapping[str, Trace]
    """Per output column, plus ``ROWS``; empty when the model could not be analysed column by
    column (it then changes as a whole)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "columns": self.columns,
                "traces": {k: [t.sql, t.reads, t.tables] for k, t in self.traces.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Analysis:
        data = json.loads(text)
        traces = {
            k: Trace(sql, tuple((a, c) for a, c in reads), tuple(tables))
            for k, (sql, reads, tables) in data["traces"].items()
        }
        columns = data["columns"]
        return cls(tuple(columns) if columns is not None else None, traces)

    @property
    def exact(self) -> bool:
        return bool(self.traces)

    def upstream_of(self, column: str) -> tuple[tuple[str, str], ...]:
        trace = self.traces.get(column)
        return trace.reads if trace else ()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def analyse(parsed: ParsedModel, schemas: Mapping[str, Sequence[str]]) -> Analysis:
    """Qualify the model against the columns of what it reads and trace every output column.

    Raises SQLError (file:line:col) for a column that does not exist. A query sqlglot cannot
    reason about gets an Analysis without traces."""
    qualified = qualify_model(parsed, schemas)
    if qualified is None:
        return Analysis(None, {})
    columns = tuple(qualified.named_selects)
    if any(isinstance(s, exp.Star) for s in qualified.selects) or len(set(columns)) != len(columns):
        return Analysis(None, {})
    assets = set(schemas)
    try:
        traces = {ROWS: _trace(qualified, None, assets)}
        for index, column in enumerate(columns):
            traces[column] = _trace(qualified, index, assets)
    except SqlglotError:
        return Analysis(columns, {})
    return Analysis(columns, traces)


def _trace(query: exp.Query, index: int | None, assets: set[str]) -> Trace:
    pruned = _keep_projection(query.copy(), index)
    pruned = pushdown_projections(pruned)
    reads: set[tuple[str, str]] = set()
    tables: set[str] = set()
    for scope in traverse_scope(pruned):
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and asset_name(source) in assets:
                tables.add(asset_name(source))
        for column in scope.columns:
            found = scope.sources.get(column.table)
            if isinstance(found, exp.Table) and asset_name(found) in assets:
                reads.add((asset_name(found), column.name))
    return Trace(
        _digest(pruned.sql(dialect=DIALECT, comments=False)), tuple(sorted(reads)), tuple(sorted(tables))
    )


def _keep_projection(query: exp.Query, index: int | None) -> exp.Query:
    """The query with only its ``index``-th output column (or a constant when None), in every
    branch of a set operation. Rows of a DISTINCT query depend on every column: keep them all."""
    if index is None and query.args.get("distinct"):
        return query
    if isinstance(query, exp.SetOperation):
        _keep_projection(query.left, index)
        _keep_projection(query.right, index)
        return query
    if isinstance(query, exp.Subquery):
        _keep_projection(query.this, index)
        return query
    assert isinstance(query, exp.Select)
    if index is None:
        query.set("expressions", [exp.alias_(exp.Literal.number(1), "_gm_rows")])
    else:
        query.set("expressions", [query.expressions[index]])
    return query
