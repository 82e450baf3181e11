"""Rewrite a model's AST so each asset it reads points at its physical table."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from gristmill.sql.parse import ParsedModel


def render(parsed: ParsedModel, physical: Mapping[str, tuple[str, str, str]]) -> exp.Query:
    """A copy of the model's query where each ``schema.name`` read becomes ``catalog.schema.table``.

    The original name stays as the alias, so ``invoice.invoice_id`` still resolves."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db and f"{node.db}.{node.name}" in physical:
            catalog, schema, table = physical[f"{node.db}.{node.name}"]
            alias = node.alias or node.name
            return exp.table_(table, db=schema, catalog=catalog, quoted=True, alias=alias)
        return node

    query = parsed.expression.transform(swap, copy=True)
    assert isinstance(query, exp.Query)
    return query
