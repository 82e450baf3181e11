"""What a backfill covers: the partitioned models of its selection, each one's partitions (its
declared values, or its intervals in the range), which of them the lake already holds, and how
they are cut into runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gristmill.engines.base import Relation
from gristmill.errors import ConfigError
from gristmill.plan import AssetGraph, Plan
from gristmill.plan.intervals import Span, contiguous, floor, parse_moment, shift, utc
from gristmill.plan.planner import Step, statically_partitioned, time_partitioned
from gristmill.runtime.session import Session
from gristmill.state.lake.intervals import read_intervals
from gristmill.state.lake.partitions import read_partitions

DEFAULT_CHUNK = {"hour": 24, "day": 7, "month": 1, "value": 1}
"""Partitions per run unless ``--chunk`` says otherwise."""


def check_options(reprocess: str, chunk: int | None) -> None:
    if reprocess not in ("missing", "failed", "all"):
        raise ConfigError(
            f'reprocess "{reprocess}" is not one of missing, failed, all',
            hint="missing: intervals not built yet; failed: those too and the ones that failed "
            "before; all: every interval again",
        )
    if chunk is not None and chunk < 1:
        raise ConfigError(f"chunk {chunk}: a run builds at least one interval", hint="e.g. --chunk 7")


def check_range(
    graph: AssetGraph, chosen: Sequence[str], start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The range in UTC; refused when the selection has nothing partitioned, or time-range
    models and no range."""
    timed = any(time_partitioned(graph.assets[name]) for name in chosen)
    if not timed and not any(statically_partitioned(graph.assets[n]) for n in chosen):
        raise ConfigError(
            f"nothing to backfill: the selection ({', '.join(chosen) or 'no assets'}) has no "
            "partitioned model",
            hint="a backfill builds incremental models split by time (`time:` and `interval:` "
            "in the header) or by declared values (`partition_by:` and `partitions:`)",
        )
    if timed and (start is None or end is None):
        raise ConfigError(
            "a backfill of models built by time interval needs the range of intervals to build",
            hint="e.g. --from 2024-01-01 --to 2024-03-31",
        )
    low, high = (utc(start), utc(end)) if start and end else (None, None)
    if low is not None and high is not None and high <= low:
        raise ConfigError(
            f"backfill range: the end ({high.isoformat()}) must be after the start ({low.isoformat()})"
        )
    return low, high


def partition_keys(
    step: Step, low: datetime | None, high: datetime | None, partitions: Sequence[str] | None, now: datetime
) -> dict[str, Span | None]:
    """The asset's partitions: its declared values (those asked for), or its intervals starting
    in the range, from its ``start`` on, and over now."""
    model = step.asset.model
    assert model is not None
    if statically_partitioned(step.asset):
        declared = [model.partition_key(v) for v in model.partitions]
        unknown = [p for p in partitions or () if p not in declared]
        if unknown:
            raise ConfigError(
                f'{step.name} has no partition "{unknown[0]}"', hint="its partitions: " + ", ".join(declared)
            )
        return {k: None for k in declared if partitions is None or k in partitions}
    assert low is not None and high is not None
    unit = model.interval
    at = floor(low, unit)
    at = at if at >= low else shift(at, unit)
    if model.start:
        try:
            at = max(at, floor(parse_moment(model.start), unit))
        except ValueError as err:
            raise ConfigError(f"start: {err}", location=model.file) from None
    found: dict[str, Span | None] = {}
    while at < high and shift(at, unit) <= now:
        found[at.isoformat()] = (at, shift(at, unit))
        at = shift(at, unit)
    return found


@dataclass
class Scope:
    """The partitions of a backfill's models and how they relate."""

    graph: AssetGraph
    plan: Plan
    keys: dict[str, dict[str, Span | None]]
    """asset -> partition key -> its interval (None: a declared value)"""
    units: dict[str, str]
    """asset -> hour, day, month, or value"""
    built: dict[str, set[str]]
    """asset -> the partitions the lake holds"""
    _ancestors: dict[str, set[str]] = field(default_factory=dict)

    def upstream_of(self, name: str) -> set[str]:
        if name not in self._ancestors:
            found: set[str] = set()
            for parent in self.graph.assets[name].upstream:
                found |= {parent} | self.upstream_of(parent)
            self._ancestors[name] = found
        return self._ancestors[name]

    def feeding(self) -> list[str]:
        """Selected assets the partitioned models read: they run with each chunk."""
        others = [s.name for s in self.plan.steps if s.name not in self.units]
        return [n for n in others if any(n in self.upstream_of(p) for p in self.units)]

    def last(self) -> list[str]:
        """The other selected assets: they run once, after every partition succeeded."""
        feeding = self.feeding()
        return [s.name for s in self.plan.steps if s.name not in self.units and s.name not in feeding]

    def overlaps(self, asset: str, key: str, other: str, other_key: str) -> bool:
        """Whether ``asset``'s partition ``key`` reads ``other``'s ``other_key``: overlapping
        intervals, the same declared value, or (partitioned two ways) any."""
        mine, theirs = self.keys[asset][key], self.keys[other][other_key]
        if mine is not None and theirs is not None:
            return mine[0] < theirs[1] and theirs[0] < mine[1]
        return (mine is None) != (theirs is None) or key == other_key

    def chunks(self, name: str, todo: list[str], chunk: int | None) -> list[list[str]]:
        """Runs' worth of partitions: declared values ``chunk`` (default one) at a time;
        intervals ``chunk`` at a time within each contiguous stretch."""
        unit = self.units[name]
        size = chunk or DEFAULT_CHUNK[unit]
        if unit == "value":
            return [todo[k : k + size] for k in range(0, len(todo), size)]
        spans = [span for key in todo if (span := self.keys[name][key]) is not None]
        pieces: list[list[str]] = []
        for lo, hi in contiguous(spans):
            stretch = [s[0].isoformat() for s in spans if lo <= s[0] < hi]
            pieces += [stretch[k : k + size] for k in range(0, len(stretch), size)]
        return pieces


def scope_of(
    session: Session,
    graph: AssetGraph,
    plan: Plan,
    span: tuple[datetime | None, datetime | None],
    partitions: Sequence[str] | None,
) -> Scope:
    """The partitions of the plan's partitioned models, and those the lake holds."""
    steps = [s for s in plan.steps if time_partitioned(s.asset) or statically_partitioned(s.asset)]
    now = datetime.now(UTC)
    units = {
        s.name: "value" if statically_partitioned(s.asset) else s.asset.model.interval
        for s in steps
        if s.asset.model is not None
    }
    keys = {s.name: partition_keys(s, span[0], span[1], partitions, now) for s in steps}
    built: dict[str, set[str]] = {s.name: set() for s in steps}
    with session.engine(read_only=True) as engine:
        for s in steps:
            if engine is None or not engine.exists(Relation.of(s.physical)):
                continue
            if statically_partitioned(s.asset):
                built[s.name] = set(read_partitions(engine, s.physical))
            else:
                built[s.name] = {lo.isoformat() for lo, _ in read_intervals(engine, s.physical)}
    return Scope(graph, plan, keys, units, built)
