"""Column lineage as a picture: the project's lineage trees of one column (what it is computed
from, what reads it) flattened into a small DAG of ``asset.column`` nodes, laid out like the
asset graph and drawn on the server (no script needed on that page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gristmill.plan.lineage import Lineage, Node
from gristmill.ui.graph.layout import layered_layout
from gristmill.ui.graph.payload import CHAR_WIDTH

Column = tuple[str, str]


@dataclass(frozen=True)
class ColumnGraph:
    nodes: list[dict[str, Any]]
    edges: list[str]
    """SVG path data, one per edge."""
    width: float
    height: float
    upstream: list[Column]
    downstream: list[Column]


def _collect(roots: tuple[Node, ...], upward: bool, edges: set[tuple[Column, Column]]) -> list[Column]:
    """Every column in the trees; edges as (read, reader)."""
    found: list[Column] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        here = (node.asset, node.column or "")
        for child in node.children:
            there = (child.asset, child.column or "")
            edges.add((there, here) if upward else (here, there))
            found.append(there)
            stack.append(child)
    return list(dict.fromkeys(found))


def column_graph(lineage: Lineage) -> ColumnGraph:
    target: Column = (lineage.asset, lineage.column or "")
    edges: set[tuple[Column, Column]] = set()
    upstream = _collect(lineage.upstream, True, edges)
    downstream = _collect(lineage.downstream, False, edges)
    columns = list(dict.fromkeys([*upstream, target, *downstream]))
    index = {c: i for i, c in enumerate(columns)}
    pairs = sorted((index[a], index[b]) for a, b in edges)
    widths = [min(320.0, len(f"{a.split('.', 1)[-1]}.{c}") * CHAR_WIDTH + 28) for a, c in columns]
    laid = layered_layout(widths, pairs)
    margin = 20.0
    left = float((laid.x - laid.width / 2).min()) - margin if columns else 0.0
    nodes = [
        {
            "asset": a,
            "column": c,
            "schema": a.split(".", 1)[0],
            "name": a.split(".", 1)[-1],
            "x": float(laid.x[i]) - left,
            "y": float(laid.y[i]) + margin + 20,
            "w": float(laid.width[i]),
            "target": (a, c) == target,
        }
        for i, (a, c) in enumerate(columns)
    ]
    paths = []
    for path in laid.paths:
        points = [(x - left, y + margin + 20) for x, y in path]
        points[0] = (points[0][0], points[0][1] + 14)  # from the box's bottom to the next box's top
        points[-1] = (points[-1][0], points[-1][1] - 14)
        (x0, y0), rest = points[0], points[1:]
        data = f"M{x0:.1f},{y0:.1f}"
        for x1, y1 in rest:
            mid = (y0 + y1) / 2
            data += f" C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}"
            x0, y0 = x1, y1
        paths.append(data)
    width = float((laid.x + laid.width / 2).max()) - left + margin if columns else 200.0
    height = float(laid.y.max()) + margin + 80 if columns else 60.0
    return ColumnGraph(nodes, paths, width, height, upstream, downstream)
