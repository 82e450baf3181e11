"""Rewrite a model's AST so each asset it reads points at its physical table."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.sql.parse import ParsedModel, asset_name, verbatim


def render(parsed: ParsedModel, physical: Mapping[str, tuple[str | None, str, str]]) -> exp.Query:
    """A copy of the model's query where each ``schema.name`` read becomes ``catalog.schema.table``.

    The original name stays as the alias, so ``invoice.invoice_id`` still resolves. A model that
    passes through unparsed has the names swapped in its text."""
    if parsed.passthrough:
        text = parsed.text
        for start, end, asset in sorted(parsed.spans, reverse=True):
            if asset in physical:
                table = exp.table_(
                    physical[asset][2], db=physical[asset][1], catalog=physical[asset][0], quoted=True
                )
                # the text is the user's, in the project's dialect: the name is spliced in as such
                text = text[:start] + table.sql(dialect=PROJECT_DIALECT) + text[end:]
        return verbatim(text)

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db and asset_name(node) in physical:
            catalog, schema, table = physical[asset_name(node)]
            alias = node.alias or node.name
            return exp.table_(table, db=schema, catalog=catalog, quoted=True, alias=alias)
        return node

    query = parsed.fresh().transform(swap, copy=False)
    assert isinstance(query, exp.Query)
    return query
