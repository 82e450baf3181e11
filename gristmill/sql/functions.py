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


# dialect -> sqlglot node class -> a rewrite giving that dialect's spelling, for nodes whose
# generator output is wrong or missing on that engine. Dialects absent here need no rewrite.
Lowering = Callable[[exp.Expr], exp.Expr]
LOWERINGS: dict[str, dict[type[exp.Expr], Lowering]] = {}
