"""Events a run emits, so interfaces and integrations (progress output, OpenLineage, alerts) can
follow it without the runtime knowing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.plan.planner import Plan
    from gristmill.runtime.run.executor import RunResult, StepResult


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    plan: Plan
    command: str
    """What started it: ``run``, ``retry 12``, ``schedule hourly``, ``backfill 3``."""


@dataclass(frozen=True)
class StepStarted:
    asset: str
    kind: str
    reason: str
    attempt: int = 1


@dataclass(frozen=True)
class StepRetrying:
    asset: str
    attempt: int
    """The attempt that failed."""
    error: str
    delay: float
    """Seconds until the next attempt."""


@dataclass(frozen=True)
class StepFinished:
    result: StepResult


@dataclass(frozen=True)
class RunStopping:
    """The run was asked to stop (a cancel, Ctrl-C, its time limit): nothing more starts, and
    the running steps were told to stop and roll back."""

    run_id: int
    reason: str
    running: tuple[str, ...]
    """Steps being stopped."""


@dataclass(frozen=True)
class RunFinished:
    result: RunResult
    status: str
    """success | failed | cancelled"""


Event = RunStarted | StepStarted | StepRetrying | StepFinished | RunStopping | RunFinished
Listener = Callable[[Event], None]


def fan_out(*listeners: Listener | None) -> Listener:
    """One listener calling each of ``listeners`` in turn."""
    present = [listener for listener in listeners if listener is not None]

    def notify(event: Event) -> None:
        for listener in present:
            listener(event)

    return notify
