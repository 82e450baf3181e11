"""The graph the UI draws: every asset of the project (sources, models, metric pre-aggregations)
plus each metric as a node reading its semantic models' tables, so ``+revenue`` selects what a
metric is computed from with the same selection syntax as the CLI."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, cast

from gristmill.plan import Asset, AssetGraph
from gristmill.project.definition import Project

METRIC_SCHEMA = "metrics"


@dataclass(frozen=True)
class Drawn:
    """The UI's graph: the project's assets and its metrics, in topological order."""

    graph: AssetGraph
    metrics: frozenset[str]
    fingerprint: str


def _metric_reads(project: Project) -> dict[str, tuple[str, ...]]:
    """Metric -> what it reads: its measure's semantic model table, or the metrics it combines."""
    layer = project.metrics
    reads: dict[str, tuple[str, ...]] = {}
    for name, metric in layer.metrics.items():
        found: list[str] = []
        measure = metric.measure_name
        located = layer.measure(measure) if measure else None
        if located is not None and located[0].name in layer.assets:
            found.append(layer.assets[located[0].name])
        found += [f"{METRIC_SCHEMA}.{m.name}" for m in metric.inputs() if m.name in layer.metrics]
        reads[name] = tuple(dict.fromkeys(found))
    return reads


def drawn_graph(project: Project, graph: AssetGraph) -> Drawn:
    """The asset graph with a node per metric (``metrics.<name>``, unless an asset has that name)."""
    assets: dict[str, Asset] = dict(graph.assets)
    metrics: list[str] = []
    pending = _metric_reads(project)
    # metrics may read metrics: add them in an order where what a metric reads comes first
    while pending:
        ready = [m for m, r in pending.items() if all(x in assets for x in r)]
        if not ready:  # a loop between metrics: the project refuses those; draw them unlinked
            ready = list(pending)
        for name in sorted(ready):
            node = f"{METRIC_SCHEMA}.{name}"
            reads = tuple(r for r in pending.pop(name) if r in assets)
            if node not in assets:
                assets[node] = Asset(node, cast(Any, "metric"), reads)
                metrics.append(node)
    children: dict[str, list[str]] = {name: list(graph.children.get(name, ())) for name in assets}
    for node in metrics:
        for parent in assets[node].upstream:
            children[parent].append(node)
    drawn = replace(
        graph,
        assets=assets,
        order=(*graph.order, *metrics),
        children={k: tuple(v) for k, v in children.items()},
    )
    return Drawn(drawn, frozenset(metrics), fingerprint(drawn))


def fingerprint(graph: AssetGraph) -> str:
    """What the layout depends on: the names, kinds and edges (not the SQL, not the data)."""
    digest = hashlib.sha256()
    for name in graph.order:
        asset = graph.assets[name]
        digest.update(f"{name}\0{asset.kind}\0{','.join(asset.upstream)}\n".encode())
    return digest.hexdigest()[:16]
