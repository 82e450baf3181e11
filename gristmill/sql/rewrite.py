"""Render a model's SQL for the engine, with asset names swapped for physical tables."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from gristmill.sql.parse import DIALECT, ParsedModel


def render(parsed: ParsedModel, physical: Mapping[str, tuple[str, str, str]], *, dialect: str = DIALECT) -> str:
    """SQL text for ``dialect`` where each ``schema.name`` read becomes ``catalog.schema.table``."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db and f"{node.db}.{node.name}" in physical:
            catalog, schema, table = physical[f"{node.db}.{node.name}"]
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
            return exp.table_(table, db=schema, catalog=catalog, alias=alias.this if alias else None)
        return node

    return parsed.expression.transform(swap, copy=True).sql(dialect=dialect)
