"""The one selection syntax used everywhere.

    orders            the asset named ``orders`` (``staging.orders``, or unique short name)
    +orders           orders and everything upstream of it      (``2+orders``: two levels)
    orders+           orders and everything downstream of it    (``orders+1``: one level)
    tag:finance       assets tagged finance
    source:shopdb     tables landed by the source ``shopdb``
    staging.*         every asset in a schema (shell-style wildcards)

Several expressions (space- or comma-separated) select their union; ``exclude`` removes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from gristmill._util.suggest import did_you_mean
from gristmill.errors import SelectionError
from gristmill.plan.graph import AssetGraph

_EXPRESSION = re.compile(r"^(?:(\d*)(\+))?([^+]+?)(?:(\+)(\d*))?$")


def _split(expressions: Iterable[str]) -> list[str]:
    return [part for expression in expressions for part in re.split(r"[\s,]+", expression) if part]


def select(
    graph: AssetGraph, expressions: Iterable[str] = (), exclude: Iterable[str] = (), *, compiled: bool = True
) -> list[str]:
    """Selected asset names in run order; no expressions selects everything. ``compiled``: a
    selected model that could not be compiled raises its error (false for listing only)."""
    wanted = _split(expressions)
    chosen = set(graph.assets) if not wanted else set().union(*(_one(graph, e) for e in wanted))
    chosen -= set().union(*(_one(graph, e) for e in _split(exclude))) if _split(exclude) else set()
    ordered = [name for name in graph.order if name in chosen]
    for name in ordered if compiled else ():  # a model that does not compile fails what selects it
        model = graph.assets[name].model
        if model is not None and model.error is not None:
            raise model.error
    return ordered


def _one(graph: AssetGraph, expression: str) -> set[str]:
    match = _EXPRESSION.match(expression)
    if not match:
        raise SelectionError(
            f'cannot read the selection "{expression}"', hint="e.g. +marts.fct_sales, tag:finance"
        )
    up_depth, up, core, down, down_depth = match.groups()
    base = _base(graph, core, expression)
    result = set(base)
    if up:
        result |= _walk(graph, base, lambda n: graph.assets[n].upstream, int(up_depth) if up_depth else None)
    if down:
        result |= _walk(
            graph, base, lambda n: graph.children.get(n, ()), int(down_depth) if down_depth else None
        )
    return result


def _base(graph: AssetGraph, core: str, expression: str) -> set[str]:
    method, _, value = core.partition(":") if ":" in core else ("", "", core)
    if method == "tag":
        found = {n for n, a in graph.assets.items() if value in a.tags}
    elif method == "source":
        found = {n for n, a in graph.assets.items() if a.source is not None and a.source.name == value}
    elif method:
        raise SelectionError(f'unknown selector "{method}:" in "{expression}"', hint="use tag: or source:")
    elif any(ch in value for ch in "*?["):
        found = {n for n in graph.assets if fnmatch.fnmatchcase(n, value)}
    elif value in graph.assets:
        found = {value}
    else:
        found = {n for n in graph.assets if n.split(".", 1)[1] == value}
        if len(found) > 1:
            raise SelectionError(
                f'"{value}" is ambiguous: ' + ", ".join(sorted(found)), hint="write it with its schema"
            )
    if not found:
        hint = did_you_mean(value, [*graph.assets, *(n.split(".", 1)[1] for n in graph.assets)])
        raise SelectionError(f'the selection "{expression}" matches no asset', hint=hint)
    return found


def _walk(graph: AssetGraph, start: set[str], step: object, depth: int | None) -> set[str]:
    assert callable(step)
    seen: set[str] = set()
    frontier = set(start)
    level = 0
    while frontier and (depth is None or level < depth):
        frontier = {n for f in frontier for n in step(f)} - seen
        seen |= frontier
        level += 1
    return seen
