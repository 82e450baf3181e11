"""The braided DAG every configuration runs, and the Gristmill project that spells it in SQL.

Layer 0 has ``width`` roots. Node ``i`` of layer ``L > 0`` depends on nodes ``i`` and
``(i + 1) % width`` of layer ``L - 1`` and, when ``L + i`` is even, also on ``(i + 3) % width``:
2 or 3 parents each, no random numbers, so every tool sees the same graph. 20 layers x 10 is
200 nodes and 475 edges.
"""

from __future__ import annotations

from pathlib import Path

LAYERS = 20
WIDTH = 10
SCHEMA = "dag"


def name(layer: int, i: int) -> str:
    return f"l{layer:03d}_n{i:03d}"


def parents(layer: int, i: int, width: int = WIDTH) -> tuple[int, ...]:
    """Indexes in layer ``layer - 1`` that node ``i`` of ``layer`` depends on."""
    if layer == 0:
        return ()
    offsets = (0, 1, 3) if (layer + i) % 2 == 0 else (0, 1)
    return tuple((i + d) % width for d in offsets)


def nodes(layers: int = LAYERS, width: int = WIDTH) -> dict[str, tuple[str, ...]]:
    """Node name -> the names it depends on, in topological order."""
    return {
        name(layer, i): tuple(name(layer - 1, p) for p in parents(layer, i, width))
        for layer in range(layers)
        for i in range(width)
    }


def model_sql(upstream: tuple[str, ...]) -> str:
    """One row, one column: the dependencies come from the tables the SQL reads (cross joins of
    one-row tables stay one row)."""
    if not upstream:
        return "select 1 as x\n"
    first, *rest = upstream
    joins = "".join(f" cross join {SCHEMA}.{u} as p{k}" for k, u in enumerate(rest, 1))
    return f"select p0.x from {SCHEMA}.{first} as p0{joins}\n"


def write_project(root: Path, layers: int = LAYERS, width: int = WIDTH, *, storage: str = "duckdb") -> int:
    """A Gristmill project of one table model per node in ``models/dag/``; returns the model count."""
    folder = root / "models" / SCHEMA
    folder.mkdir(parents=True)
    (root / "gristmill.toml").write_text(f'name = "orchestration_bench"\n\n[storage]\nformat = "{storage}"\n')
    graph = nodes(layers, width)
    for node, upstream in graph.items():
        (folder / f"{node}.sql").write_text(model_sql(upstream))
    return len(graph)
