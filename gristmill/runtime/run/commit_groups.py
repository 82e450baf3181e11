"""Several small steps of a run publish in one commit.

On DuckLake every commit is a snapshot: a write to the catalog plus, for the next statement, a
rebuild of the catalog from it, ~0.1-0.2 s of CPU with a few hundred tables — more than most
models' own SQL, and growing with the number of tables. So steps that build models share a
transaction until they have taken about a CPU-second (or 64 steps), then commit together;
readers in other processes see their tables a little later, each snapshot stays consistent, and a
crash loses only uncommitted steps, which the next run rebuilds (their versions never committed).

A failure inside the shared transaction rolls it back whole: the steps that had succeeded in it are
built again, each in a transaction of its own, before the failure is reported, so a failing model
costs its group-mates at most a CPU-second of work and never their publication. Once the run is
cancelled nothing commits any more (docs/orchestration.md, "Stopping a run"): steps of the open
group are then reported cancelled, not published, and their views are not switched. Sources never
join a group: a load commits
its data and cursor alone, and a source that keeps its own position is told only after that commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from gristmill.engines.base import Transactions
from gristmill.errors import GristmillError
from gristmill.plan.planner import Step

if TYPE_CHECKING:
    from gristmill.runtime.run.executor import StepResult

Build = Callable[[Step, bool], "StepResult"]
"""Build one step, in the shared transaction when the flag is set."""

GROUP_STEPS = 64
GROUP_SECONDS = 1.0
"""CPU seconds (of the whole process: DuckDB's threads do the work) the steps of a group may
take before it commits: what a failure makes the others redo. CPU, not wall time, so that a
busy machine does not shrink the groups."""


@dataclass
class CommitGroup:
    engine: Transactions
    build: Build
    cancelled: Callable[[], bool]
    """The run was asked to stop: nothing may commit any more."""
    steps: int = GROUP_STEPS
    seconds: float = GROUP_SECONDS
    corrections: dict[str, StepResult] = field(default_factory=dict)
    """Steps reported successful whose work was rolled back, and then failed when built again (a
    model that is not deterministic) or were not built again (the run was cancelled): their real
    outcome."""
    _pending: list[Step] = field(default_factory=list)
    _elapsed: float = 0.0

    def run(self, step: Step) -> StepResult:
        if step.asset.kind == "source":
            self.flush()
            return self.build(step, False)
        grouped = bool(self._pending)
        cpu = time.process_time()
        try:
            outcome = self.build(step, True)
        except BaseException:
            if grouped:
                self._redo(self._take(), "its group was rolled back with a step that failed")
            raise
        if outcome.status != "success":
            if grouped:
                self._redo(self._take(), f"its group was rolled back with {step.name}, which failed")
            return outcome
        self._pending.append(step)
        self._elapsed += time.process_time() - cpu
        if len(self._pending) >= self.steps or self._elapsed >= self.seconds:
            self.flush()
        return self.corrections.pop(step.name, outcome)

    def flush(self) -> None:
        """Commit what the group holds; a failed commit builds each of its steps again alone."""
        if not self._pending:
            return
        steps = self._take()
        if self.cancelled():
            self.engine.rollback()
            self._redo(steps, "the run was cancelled before their commit")
            return
        try:
            self.engine.commit()
        except GristmillError as err:
            self._redo(steps, f"the commit failed ({err.message})")

    def abandon(self) -> None:
        """The run ended with a step still holding the engine session: what the group holds never
        commits (the session is not touched again; it rolls back when the process ends)."""
        steps = self._take()
        self._redo(steps, "the run was cancelled before their commit")

    def _take(self) -> list[Step]:
        steps, self._pending, self._elapsed = self._pending, [], 0.0
        return steps

    def _redo(self, steps: list[Step], why: str) -> None:
        for step in steps:
            if self.cancelled():
                from gristmill.runtime.run.executor import StepResult  # the executor imports this module

                self.corrections[step.name] = StepResult(
                    step.name,
                    step.asset.kind,
                    "build",
                    "cancelled",
                    step.reason,
                    error=f"not published: {why}",
                )
                continue
            again = self.build(step, False)
            if again.status != "success":
                self.corrections[step.name] = replace(
                    again, error=f"built again because {why}, and then: {again.error}"
                )
