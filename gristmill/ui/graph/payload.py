"""What ``/graph/layout.json`` sends: positions laid out once per project shape (cached by its
fingerprint), and each node's status, freshness and owner, read fresh on every request.

Columnar (one list per field) so 2,000 nodes stay a small document the browser reads fast."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gristmill._util.durations import parse_duration
from gristmill.plan import Asset
from gristmill.ui.graph.layout import layered_layout
from gristmill.ui.graph.lineage_graph import Drawn

CHAR_WIDTH = 7.2
"""Pixels per label character at the page's 12px font (the browser truncates what overflows)."""
_CACHED = 8
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def label_width(name: str) -> float:
    short = name.split(".", 1)[-1]
    return float(min(280, max(64, round(len(short) * CHAR_WIDTH + 28))))


def layout_of(drawn: Drawn) -> dict[str, Any]:
    """The laid-out graph; computed once per fingerprint (the project's names, kinds and edges)."""
    with _lock:
        if drawn.fingerprint in _cache:
            _cache.move_to_end(drawn.fingerprint)
            return _cache[drawn.fingerprint]
    laid = _lay_out(drawn)
    with _lock:
        _cache[drawn.fingerprint] = laid
        while len(_cache) > _CACHED:
            _cache.popitem(last=False)
    return laid


def _lay_out(drawn: Drawn) -> dict[str, Any]:
    graph = drawn.graph
    names = list(graph.order)
    index = {name: i for i, name in enumerate(names)}
    edges = [(index[p], index[name]) for name in names for p in graph.assets[name].upstream if p in index]
    laid = layered_layout([label_width(n) for n in names], edges)
    return {
        "fingerprint": drawn.fingerprint,
        "nodes": {
            "name": names,
            "kind": [str(graph.assets[n].kind) for n in names],
            "x": [round(v, 1) for v in laid.x.tolist()],
            "y": [round(v, 1) for v in laid.y.tolist()],
            "w": laid.width.tolist(),
            "layer": laid.layer.tolist(),
        },
        # parent, child, then the bend points as flat x, y pairs
        "edges": [
            [p, c, [round(v, 1) for point in path for v in point]]
            for (p, c), path in zip(edges, laid.paths, strict=True)
        ],
        "crossings": laid.crossings,
        "naive_crossings": laid.naive_crossings,
    }


def freshness(asset: Asset, built_at: str | None, now: datetime) -> str:
    """``fresh`` / ``stale`` against the asset's freshness check, ``no policy``, or ``never built``."""
    ages = [parse_duration(c.params.get("max_age")) for c in asset.checks if c.kind == "freshness"]
    policy = min((a for a in ages if a is not None), default=None)
    if built_at is None:
        return "never built"
    if policy is None:
        return "no policy"
    try:
        built = datetime.fromisoformat(built_at)
    except ValueError:
        return "unknown"
    built = built if built.tzinfo else built.replace(tzinfo=UTC)
    return "fresh" if now - built <= policy else "stale"


def attributes(drawn: Drawn, infos: Sequence[Any]) -> dict[str, list[str]]:
    """Per node, in layout order: last run status, freshness, owner (``AssetInfo`` rows of
    ``Workspace.assets``; metrics have none of these)."""
    by_name = {info.name: info for info in infos}
    now = datetime.now(UTC)
    status, fresh, owner = [], [], []
    for name in drawn.graph.order:
        info = by_name.get(name)
        if name in drawn.metrics:
            status.append("metric")
            fresh.append("metric")
            owner.append("metric")
            continue
        status.append((info.last_status if info else None) or "never run")
        fresh.append(freshness(drawn.graph.assets[name], info.built_at if info else None, now))
        owner.append((info.owner if info else None) or "no owner")
    return {"status": status, "freshness": fresh, "owner": owner}
