"""Walk column lineage up and down the graph: which columns feed a column, and which read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gristmill._util.suggest import did_you_mean
from gristmill.errors import SelectionError
from gristmill.plan.graph import AssetGraph

Column = tuple[str, str]


@dataclass(frozen=True)
class Node:
    asset: str
    column: str | None
    children: tuple[Node, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.asset}.{self.column}" if self.column else self.asset


@dataclass(frozen=True)
class Lineage:
    asset: str
    column: str | None
    upstream: tuple[Node, ...]
    """What feeds the target: a tree, each column with the columns it reads."""
    downstream: tuple[Node, ...]
    """What reads the target: a tree, each column with the columns that read it."""
    columns: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def build(
        cls,
        asset: str,
        column: str | None,
        edges: Mapping[Column, tuple[Column, ...]],
        columns: Mapping[str, tuple[str, ...]],
        graph: AssetGraph,
    ) -> Lineage:
        if asset not in graph.assets:
            raise SelectionError(f'no asset "{asset}"', hint=did_you_mean(asset, graph.assets))
        known = columns.get(asset, ())
        if column is not None and known and column not in known:
            raise SelectionError(
                f'{asset} has no column "{column}"',
                hint=did_you_mean(column, known) or f"{asset} has: " + ", ".join(known),
            )
        readers: dict[Column, list[Column]] = {}
        for target, sources in edges.items():
            for source in sources:
                readers.setdefault(source, []).append(target)
        targets = [(asset, column)] if column else [(asset, c) for c in known]

        def up(node: Column, seen: frozenset[Column]) -> Node:
            feeds = [c for c in edges.get(node, ()) if c not in seen]
            return Node(*node, tuple(up(c, seen | {c}) for c in sorted(feeds)))

        def down(node: Column, seen: frozenset[Column]) -> Node:
            reads = [c for c in readers.get(node, ()) if c not in seen]
            return Node(*node, tuple(down(c, seen | {c}) for c in sorted(reads)))

        if column is None and not known:
            # Columns unknown before a run: fall back to asset-level edges.
            upstream = tuple(Node(p, None) for p in graph.assets[asset].upstream)
            downstream = tuple(Node(c, None) for c in graph.children.get(asset, ()))
            return cls(asset, None, upstream, downstream)
        return cls(
            asset,
            column,
            tuple(up(t, frozenset({t})) for t in targets),
            tuple(down(t, frozenset({t})) for t in targets),
            known,
        )
