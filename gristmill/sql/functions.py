"""Portable SQL functions: operations the platform needs that engines spell differently.

Builders elsewhere (``sql/``, ``runtime/``, ``state/``, the stream loop) never write an engine's
function name: they call the helpers here, which return sqlglot's own dialect-neutral nodes
(``exp.DateBin``, ``exp.StructExtract``, …). sqlglot's generators spell most of them for each
dialect; where a generator's spelling is wrong or missing for an engine we run on, ``LOWERINGS``
rewrites the node for that dialect, and ``sql.render.render`` — the one place a dialect is named
— applies it. Adding an engine means adding its entries here, not editing every builder.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp


def time_bucket(timestamp: exp.Expr, seconds: int) -> exp.Expr:
    """The start of the ``seconds``-wide window holding ``timestamp``, windows aligned to the epoch."""
    width = exp.Interval(this=exp.Literal.string(str(seconds)), unit=exp.var("SECONDS"))
    return exp.DateBin(this=width, expression=timestamp)


def struct_field(value: exp.Expr, name: str) -> exp.Expr:
    """Field ``name`` of the struct ``value``."""
    return exp.StructExtract(this=value, expression=exp.Literal.string(name))


def row_json(alias: str) -> exp.Expr:
    """The whole row of the relation aliased ``alias`` as JSON text (an object keyed by column)."""
    node = exp.JSONFormat(this=exp.column(alias))
    node.meta["row"] = True  # ``this`` names a relation, not a value (spelt apart where it matters)
    return node


def _json_text(node: exp.Expr) -> exp.Expr:
    """PostgreSQL: to_json gives json, cast to text as the other engines' spelling gives."""
    return exp.cast(exp.Anonymous(this="TO_JSON", expressions=[node.this.copy()]), exp.DataType.Type.TEXT)


def _row_struct_json(node: exp.Expr) -> exp.Expr:
    """Spark: a row becomes a struct of its columns before to_json."""
    if not node.meta.get("row"):
        return node
    row = exp.Struct(expressions=[exp.column(exp.Star(), table=node.this.name)])
    return exp.Anonymous(this="TO_JSON", expressions=[row])


# dialect -> sqlglot node class -> a rewrite giving that dialect's spelling, for nodes whose
# generator output is wrong or missing on that engine. Dialects absent here need no rewrite.
Lowering = Callable[[exp.Expr], exp.Expr]
LOWERINGS: dict[str, dict[type[exp.Expr], Lowering]] = {
    "postgres": {exp.JSONFormat: _json_text},
    "spark": {exp.JSONFormat: _row_struct_json},
}
