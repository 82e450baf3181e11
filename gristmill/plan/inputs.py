"""What planning needs from the sources besides the lake: each landed table's change marker,
and the columns of those whose readers this plan validates.

Asking a source costs a round trip (an API, a database), so it is asked only what the plan uses.
The sources are passed in (``Sources``): planning itself opens no connector."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from gristmill.plan.graph import AssetGraph
from gristmill.plan.planner import Recorded

T = TypeVar("T")


class SourceTables(Protocol):
    """The two questions planning asks a source about one of its tables."""

    def change_marker(self, table: Any) -> str | None: ...

    def schema(self, table: Any) -> Any: ...


@dataclass(frozen=True)
class PlanInputs:
    markers: dict[str, str | None] = field(default_factory=dict)
    """landed asset -> its source's change marker (None: the source cannot tell)"""
    source_columns: dict[str, list[str]] = field(default_factory=dict)
    """landed asset -> its source's column names, where this plan validates what reads it"""


def gather(
    graph: AssetGraph,
    chosen: Sequence[str],
    *,
    recorded: Mapping[str, Recorded],
    existing: Collection[str],
    sources: Callable[[str], SourceTables],
    full_refresh: bool,
    attempt: Callable[[Callable[[], Any]], Any] = lambda read: read(),
) -> PlanInputs:
    """Ask the chosen landed tables' sources what the plan needs. ``attempt`` reads a schema
    (with the project's retries)."""
    inputs = PlanInputs()
    for name in chosen:
        asset = graph.assets[name]
        if asset.source is None or asset.table is None:
            continue
        source = sources(asset.source.name)
        marker = inputs.markers[name] = source.change_marker(asset.table)
        # A source that cannot tell whether it changed (an API, a database) is not asked for its
        # schema while its table exists: the load's contract handles any change.
        old = recorded.get(name)
        stale = old is None or (marker is not None and dict(old.parts.get("data") or {}).get(name) != marker)
        # Columns are needed only to validate what reads this table in this run.
        read_here = bool(asset.checks) or any(child in chosen for child in graph.children[name])
        if read_here and (full_refresh or stale or name not in existing):
            inputs.source_columns[name] = attempt(functools.partial(source.schema, asset.table)).names
    return inputs
