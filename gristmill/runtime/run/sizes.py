"""How many rows a step reads, when the run can know it, so that an engine sizing its resources by
step (``SizedSteps``: DuckDB runs a small step on one thread) is told before the step runs.

An input's size is known when the table it serves is rewritten whole on each build (a ``table``
model, a source loaded with ``write = "replace"``): the rows its build reported in this run, or
else those its version row recorded. An incremental table, a snapshot, an appending source or a
view counts as unknown (their recorded rows are the rows a run wrote, not the rows they hold), and
so does a step with no input asset (a model generating rows or reading files itself): an unknown
size keeps the project's threads."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gristmill.engines.base import Engine
from gristmill.errors import GristmillError
from gristmill.plan.graph import Asset
from gristmill.plan.planner import Recorded, Step
from gristmill.state.lake.versions import read_versions


def rewritten(asset: Asset) -> bool:
    """Each build replaces the whole table, so the rows it wrote are the rows it holds."""
    return asset.kind == "table" or (asset.table is not None and asset.table.load.write == "replace")


class InputSizes:
    """Rows of the physical tables a run's steps read: from this run's builds, then from the
    version rows (read once, and only when a step reads a table this run did not build)."""

    def __init__(self, engine: Engine, assets: Callable[[str], Asset | None]) -> None:
        self._engine = engine
        self._assets = assets
        self._built: dict[str, int | None] = {}
        self._recorded: Mapping[str, Recorded] | None = None

    def built(self, step: Step, rows: int | None) -> None:
        """``step`` built ``step.physical`` with ``rows`` (reported by its build)."""
        self._built[step.physical] = rows if rewritten(step.asset) else None

    def rows(self, step: Step, serving: Mapping[str, str]) -> int | None:
        """The rows ``step`` reads from its input assets in all, or None if any is unknown."""
        if step.asset.source is not None or not step.asset.upstream:
            return None
        total = 0
        for upstream in step.asset.upstream:
            rows = self._rows(upstream, serving.get(upstream, upstream))
            if rows is None:
                return None
            total += rows
        return total

    def _rows(self, asset: str, physical: str) -> int | None:
        if physical in self._built:
            return self._built[physical]
        known = self._assets(asset)
        if known is None or not rewritten(known):
            return None
        if self._recorded is None:
            try:
                self._recorded = read_versions(self._engine)
            except GristmillError:  # a hint only: the step itself reports what is wrong
                self._recorded = {}
        recorded = self._recorded.get(physical)
        return recorded.rows if recorded is not None else None
