"""Column-level lineage, computed once per model from its qualified AST.

Every output column gets a *trace*: a digest of the SQL it depends on — its own expression, the
expressions of the CTE and subquery columns it reads, and the clauses that decide which rows
exist (filters, joins, groupings) in every scope it passes through — plus the upstream columns
and tables underneath. The row set gets a trace of its own. Fingerprints built from traces change
for exactly the columns a change can reach: editing one expression leaves every other column's
trace as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, build_scope

from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.sql.parse import ParsedModel, asset_name
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
    try:
        root = build_scope(qualified)
        if root is None:
            return Analysis(columns, {})
        tracer = _Tracer(set(schemas))
        parts = {ROWS: tracer.rows(root), **{c: tracer.column(root, c) for c in columns}}
    except (SqlglotError, ValueError, KeyError):
        return Analysis(columns, {})
    return Analysis(columns, {name: part.trace() for name, part in parts.items()})


@dataclass(frozen=True)
class _Part:
    """A piece of a trace: a digest of the SQL it stands for, and the upstream columns and
    tables under it."""

    digest: str
    reads: frozenset[tuple[str, str]] = frozenset()
    tables: frozenset[str] = frozenset()

    def trace(self) -> Trace:
        return Trace(self.digest, tuple(sorted(self.reads)), tuple(sorted(self.tables)))


def _combine(label: object, parts: Sequence[_Part]) -> _Part:
    return _Part(
        _digest(json.dumps([label, [p.digest for p in parts]], default=str)),
        frozenset().union(*(p.reads for p in parts)),
        frozenset().union(*(p.tables for p in parts)),
    )


_ROW_CLAUSES = ("where", "group", "having", "qualify", "order", "limit", "offset", "distinct")


class _Tracer:
    """Walks the scopes of a qualified query once, memoised: each projection's and each scope's
    row-deciding clauses are rendered once, however many columns read them. A column's trace is
    its own expression, what the columns in it trace to (through CTEs, subqueries and set
    operations, down to upstream table columns), and the trace of the rows of every scope it
    passes through (filters, joins, groupings and the rows of their sources)."""

    def __init__(self, assets: set[str]) -> None:
        self._assets = assets
        self._columns: dict[tuple[int, str], _Part] = {}
        self._bare: dict[tuple[int, str], _Part] = {}
        self._rows: dict[int, _Part] = {}

    def column(self, scope: Scope, name: str) -> _Part:
        key = (id(scope), name)
        if key not in self._columns:
            self._columns[key] = _combine("column", [self.bare(scope, name), self.rows(scope)])
        return self._columns[key]

    def bare(self, scope: Scope, name: str) -> _Part:
        """The column's own expression and what it reads, without the rows of its scope."""
        key = (id(scope), name)
        if key in self._bare:
            return self._bare[key]
        self._bare[key] = _Part("cycle")  # a name that refers to itself resolves to a constant
        query = scope.expression
        if not isinstance(query, exp.Select | exp.SetOperation):
            part = self._literal(query)  # a VALUES list: each column is all of it
        elif scope.set_operation_scopes:
            names = list(_names(scope))
            index = names.index(name) if name in names else -1
            branches = [
                self.bare(branch, _name_in(branch, name, index, bool(query.args.get("by_name"))))
                for branch in scope.set_operation_scopes
            ]
            part = _combine(["set", query.key, index], branches)
        else:
            found = [p for p in query.expressions if p.alias_or_name == name]
            part = self._expression(scope, found[0], "projection") if found else _Part(f"unknown:{name}")
        self._bare[key] = part
        return part

    def rows(self, scope: Scope) -> _Part:
        key = id(scope)
        if key in self._rows:
            return self._rows[key]
        self._rows[key] = _Part("cycle")
        query = scope.expression
        if not isinstance(query, exp.Select | exp.SetOperation):
            self._rows[key] = self._literal(query)
            return self._rows[key]
        parts: list[_Part] = []
        labels: list[object] = []
        everything = False
        if scope.set_operation_scopes:
            labels.append([query.key, bool(query.args.get("distinct"))])
            parts.extend(self.rows(branch) for branch in scope.set_operation_scopes)
            everything = bool(query.args.get("distinct"))
            clauses: tuple[str, ...] = ("order", "limit", "offset")
        else:
            clauses = _ROW_CLAUSES
            everything = bool(query.args.get("distinct"))
            for join in query.args.get("joins") or ():
                on = join.args.get("on")
                labels.append(["join", join.side, join.kind, join.this.alias_or_name])
                if on is not None:
                    parts.append(self._expression(scope, on, "on"))
            for name, (node, source) in sorted(scope.selected_sources.items()):
                if isinstance(source, Scope):
                    parts.append(self.rows(source))
                elif isinstance(source, exp.Table) and asset_name(source) in self._assets:
                    parts.append(_Part(f"rows:{asset_name(source)}", tables=frozenset([asset_name(source)])))
                else:
                    text = node.sql(dialect=PROJECT_DIALECT, comments=False, copy=False)
                    labels.append(["source", name, text])
        for clause in clauses:
            value = query.args.get(clause)
            if value is None or value is False:
                continue
            if isinstance(value, exp.Expr):
                everything = everything or bool(value.args.get("all")) or _by_all(value)
                parts.append(self._expression(scope, value, clause))
            else:
                labels.append([clause, value])
        if everything:
            parts.extend(self.bare(scope, name) for name in _names(scope))
        part = _combine(["rows", labels], parts)
        self._rows[key] = part
        return part

    def _expression(self, scope: Scope, node: exp.Expr, label: str) -> _Part:
        """An expression of this scope: its SQL, the columns in it, and the subqueries in it."""
        inside = {id(n) for n in node.walk()}
        parts = [self._resolve(scope, column) for column in scope.columns if id(column) in inside]
        # sqlglot leaves output aliases (ORDER BY revenue) out of a scope's columns.
        known = {id(column) for column in scope.columns}
        names = _names(scope)
        for column in node.find_all(exp.Column):
            if id(column) in known or column.table or column.name not in names:
                continue
            if column.find_ancestor(exp.Select, exp.SetOperation) is scope.expression:
                parts.append(self.bare(scope, column.name))
        for sub in scope.subquery_scopes:
            if id(sub.expression) in inside:
                parts.append(self._whole(sub))
        return _combine([label, node.sql(dialect=PROJECT_DIALECT, comments=False, copy=False)], parts)

    def _literal(self, query: exp.Expr) -> _Part:
        """A source written out in the query (a VALUES list): its rows and columns are its SQL."""
        return _combine(["literal", query.sql(dialect=PROJECT_DIALECT, comments=False, copy=False)], [])

    def _whole(self, scope: Scope) -> _Part:
        """A subquery in an expression: every column it outputs and its rows."""
        names = list(_names(scope))
        return _combine("subquery", [*(self.bare(scope, n) for n in names), self.rows(scope)])

    def _resolve(self, scope: Scope, column: exp.Column) -> _Part:
        table = column.table
        if not table:
            # An output alias used in the same query (ORDER BY revenue, a lateral alias).
            names = list(_names(scope))
            return self.bare(scope, column.name) if column.name in names else _Part(f"free:{column.name}")
        owner: Scope | None = scope
        while owner is not None and table not in owner.sources:
            owner = owner.parent  # a correlated reference to an enclosing query
        source = owner.sources.get(table) if owner is not None else None
        if isinstance(source, Scope):
            return self.column(source, column.name)
        if isinstance(source, exp.Table) and asset_name(source) in self._assets:
            asset = asset_name(source)
            return _Part(f"{asset}.{column.name}", frozenset([(asset, column.name)]), frozenset([asset]))
        return _Part(f"other:{table}.{column.name}")


def _name_in(branch: Scope, name: str, index: int, by_name: bool) -> str:
    names = list(_names(branch))
    if by_name or index < 0 or index >= len(names):
        return name
    return names[index]


def _by_all(clause: exp.Expr) -> bool:
    """ORDER BY ALL and the like: the clause stands for every output column."""
    return any(
        isinstance(node, exp.Column | exp.Var)
        and not getattr(node, "table", "")
        and node.name.upper() == "ALL"
        for node in clause.walk()
    )


def _names(scope: Scope) -> list[str]:
    query = scope.expression
    return list(query.named_selects) if isinstance(query, exp.Query) else []
