"""Run hook SQL (a dbt project's pre/post hooks and on-run-start/on-run-end) on the engine.

Hooks are written against asset names (``main.orders``, what ``{{ this }}`` renders); each such
name is pointed at the physical table it stands for in this run before the statement runs, as a
model's own SQL is. A statement that cannot be parsed runs as written."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gristmill.engines.base import Engine
from gristmill.errors import EngineError, GristmillError
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.specs import HookSpec

Physical = Callable[[str], exp.Table | None]
"""The physical table an asset name stands for in this run; None for any other name."""


def _pointed(sql: str, physical: Physical, dialect: str) -> list[str]:
    try:
        statements = [s for s in sqlglot.parse(sql, read=PROJECT_DIALECT) if s is not None]
    except SqlglotError:
        return [sql]

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db and isinstance(node.this, exp.Identifier):
            found = physical(f"{node.db}.{node.name}")
            if found is not None:
                table = found.copy()
                if node.alias:
                    table.set("alias", node.args.get("alias"))
                return table
        return node

    return [s.transform(swap).sql(dialect=dialect) for s in statements]


def run_hooks(engine: Engine, hooks: Sequence[HookSpec], physical: Physical, what: str) -> None:
    """Each hook's statements in order; the first that fails stops them with its location."""
    dialect = engine.dialect
    for hook in hooks:
        for statement in _pointed(hook.sql, physical, dialect):
            try:
                engine.execute(statement)
            except GristmillError as err:
                raise EngineError(
                    f"{hook.location}: {what} failed: {err.message}",
                    hint="fix the hook's SQL; it runs on DuckDB, as dbt-duckdb runs it",
                ) from None
