"""The layered project as data: sources, models, the columns each model reads, and tests.

Deterministic by construction (arithmetic, no random numbers), so every run and every tool
sees the same DAG. Intermediate models sit in lanes: a lane is a chain through the layers in
which each model takes ``id, customer_id, dim, event_date`` from its *primary* parent (the
previous model of its lane) and may join a *secondary* parent aggregated by ``customer_id``
(it reads only ``customer_id`` and ``metric`` of that one). So:

* the *target* staging model (``stg_orders_029`` at 300 models) roots two lanes and is joined
  by the first model of every other "dirty" lane: ~190 models descend from it;
* the "clean" lanes never read it, directly or not;
* its ``dim`` column flows only down the two lanes it roots (and the marts over them), so a
  change to that one column concerns ~40 models, while ~190 are downstream of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SOURCES = ("customers", "orders", "payments", "events")
ROWS = 100_000
COLUMNS = ("id", "customer_id", "metric", "dim", "event_date")
SOURCE_COLUMNS = {
    "id": "BIGINT",
    "customer_id": "BIGINT",
    "amount": "DOUBLE",
    "category_code": "BIGINT",
    "event_date": "DATE",
}
# distinct customers per source: group-bys shrink to this many rows
CUSTOMERS = {"customers": 20_000, "orders": 5_000, "payments": 12_000, "events": 8_000}

Layer = Literal["staging", "intermediate", "marts"]
Kind = Literal["staging", "join", "group", "group_month", "window", "window_lag", "mart"]


@dataclass
class Model:
    name: str
    layer: Layer
    kind: Kind
    parents: list[str]
    """Primary parent first; for staging models the source table (``src__<source>``)."""
    variant: int = 0
    test: Literal["not_null", "unique"] = "not_null"
    lane: int | None = None
    depth: int = 0

    @property
    def asset(self) -> str:
        return f"{self.layer}.{self.name}"


@dataclass
class Spec:
    models: list[Model]
    target: str
    """The staging model whose ``dim`` column the change benchmark edits."""
    column: str = "dim"
    rows: int = ROWS
    by_name: dict[str, Model] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {m.name: m for m in self.models}

    def descendants(self, name: str) -> set[str]:
        children: dict[str, list[str]] = {}
        for model in self.models:
            for parent in model.parents:
                children.setdefault(parent, []).append(model.name)
        found: set[str] = set()
        todo = [name]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def readers(self, name: str, column: str) -> set[str]:
        """Models that read ``name.column`` directly or through another model's column: the
        models a column-level change to it concerns (``name`` itself included)."""
        changed = {(name, column)}
        concerned = {name}
        for model in self.models:
            reads = column_reads(model)
            for out, inputs in reads.items():
                if any(i in changed for i in inputs):
                    changed.add((model.name, out))
                    concerned.add(model.name)
        return concerned

    @property
    def depth(self) -> int:
        return max(m.depth for m in self.models)

    @property
    def edges(self) -> int:
        return sum(len(m.parents) for m in self.models)


def column_reads(model: Model) -> dict[str, set[tuple[str, str]]]:
    """Per output column, the (parent, column) pairs its value depends on, keys and filters
    included (column-level lineage of the generated SQL)."""
    if model.kind == "staging":
        return {}
    p = model.parents[0]
    keys = {(p, "customer_id")}
    if model.kind == "join":
        s = model.parents[1]
        return {
            "id": {(p, "id")},
            "customer_id": {(p, "customer_id")},
            "metric": {(p, "metric"), (p, "customer_id"), (s, "customer_id"), (s, "metric")},
            "dim": {(p, "dim")},
            "event_date": {(p, "event_date")},
        }
    if model.kind in ("group", "group_month"):
        if model.kind == "group_month":
            keys = keys | {(p, "event_date")}
        return {
            "id": {(p, "id")} | keys,
            "customer_id": keys,
            "metric": {(p, "metric")} | keys,
            "dim": {(p, "dim")} | keys,
            "event_date": {(p, "event_date")} | keys,
        }
    if model.kind in ("window", "window_lag"):
        return {
            "id": {(p, "id")},
            "customer_id": {(p, "customer_id")},
            "metric": {(p, "metric"), (p, "customer_id"), (p, "event_date"), (p, "id")},
            "dim": {(p, "dim")},
            "event_date": {(p, "event_date")},
        }
    assert model.kind == "mart"
    others = {(o, c) for o in model.parents[1:] for c in ("customer_id", "metric")}
    return {
        "id": keys,
        "customer_id": keys,
        "metric": {(p, "metric")} | keys | others,
        "dim": {(p, "dim")} | keys,
        "event_date": {(p, "event_date")} | keys,
    }


# Kinds of the intermediate models that are not forced to be joins: 7 joins, 3 group-bys and
# 2 window functions in every 12 (the research project had 105 / 46 / 29 of 180).
_PATTERN: tuple[Kind, ...] = (
    "join",
    "group",
    "join",
    "window",
    "join",
    "join",
    "group_month",
    "join",
    "window_lag",
    "join",
    "group",
    "join",
)


def build_spec(models: int = 300, rows: int = ROWS) -> Spec:
    if models < 12:
        raise ValueError("--models must be at least 12")
    n_staging = max(4, round(models * 40 / 300))
    n_marts = max(2, round(models * 80 / 300))
    n_int = models - n_staging - n_marts
    layers = 13 if n_int >= 26 else max(1, n_int // 2)
    lanes = -(-n_int // layers)
    n_clean = max(1, round(lanes * 4 / 14))
    dirty = list(range(lanes - n_clean))
    clean = list(range(lanes - n_clean, lanes))
    rooted = {0, len(dirty) // 2} if len(dirty) >= 4 else {0}

    staging = [
        Model(f"stg_{SOURCES[i % 4]}_{i:03d}", "staging", "staging", [f"src__{SOURCES[i % 4]}"], variant=i)
        for i in range(n_staging)
    ]
    target_index = max(i for i in range(min(30, n_staging)) if i % 4 == 1)
    target = staging[target_index].name
    others = [m.name for m in staging if m.name != target]
    next_staging = iter(range(10**9))

    def any_staging() -> str:
        return others[(next(next_staging) * 7) % len(others)]

    grid: dict[tuple[int, int], Model] = {}
    intermediate: list[Model] = []
    for i in range(n_int):
        layer, lane = i // lanes + 1, i % lanes
        group = dirty if lane in dirty else clean
        if layer == 1:
            primary = target if lane in rooted else others[(lane * 3) % len(others)]
        else:
            primary = grid[(layer - 1, lane)].name
        if layer == 1 and lane in dirty and lane not in rooted:
            kind: Kind = "join"
            secondary = target
        else:
            kind = _PATTERN[(i * 5) % len(_PATTERN)]
            if i % 3 == 0 or layer == 1:
                secondary = any_staging()
            else:
                back = max(1, layer - 1 - i % 3)
                secondary = grid[(back, group[(group.index(lane) + 1 + i) % len(group)])].name
        parents = [primary, secondary] if kind == "join" else [primary]
        model = Model(f"int_{i:03d}", "intermediate", kind, parents, variant=i, lane=lane)
        grid[(layer, lane)] = model
        intermediate.append(model)

    last = {lane: max(layer for layer, ln in grid if ln == lane) for lane in range(lanes)}
    marts: list[Model] = []
    for m in range(n_marts):
        lane = m % lanes
        group = dirty if lane in dirty else clean
        layer = max(1, last[lane] - (m // lanes) % 4)
        parents = [grid[(layer, lane)].name]
        for offset in (1, 2) if m % 3 == 0 else (1,):
            other = group[(group.index(lane) + offset + m) % len(group)]
            back = max(1, min(last[other], layer - offset))
            name = grid[(back, other)].name
            if name not in parents:
                parents.append(name)
        if len(parents) == 1:  # a single clean lane: join a clean staging model instead
            parents.append(grid[(max(1, layer - 1), lane)].name if layer > 1 else any_staging())
        marts.append(Model(f"mart_{m:03d}", "marts", "mart", parents, variant=m, lane=lane))

    spec_models = staging + intermediate + marts
    by_name = {m.name: m for m in spec_models}
    for index, model in enumerate(spec_models):
        model.test = "unique" if index % 2 else "not_null"
        model.depth = 1 + max((by_name[p].depth for p in model.parents if p in by_name), default=0)
    return Spec(spec_models, target, rows=rows)
