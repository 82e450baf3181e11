"""Topological ordering of a dependency mapping, with the cycle named when there is one."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping


class DependencyCycle(Exception):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def topological_order(dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes ordered so each comes after everything it depends on; ties keep name order."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in sorted(dependencies):
        sorter.add(node, *sorted(dependencies[node]))
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        cycle = list(err.args[1])
        raise DependencyCycle(cycle[::-1]) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def ancestors(node: str, dependencies: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(dependencies.get(node, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(dependencies.get(current, ()))
    return seen


def descendants(node: str, dependencies: Mapping[str, Iterable[str]]) -> set[str]:
    children: dict[str, set[str]] = {}
    for child, parents in dependencies.items():
        for parent in parents:
            children.setdefault(parent, set()).add(child)
    return ancestors(node, children)
