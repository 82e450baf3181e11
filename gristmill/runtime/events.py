"""Events a run emits, so interfaces can show progress without the runtime knowing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.runtime.executor import StepResult


@dataclass(frozen=True)
class StepStarted:
    asset: str
    kind: str
    reason: str


@dataclass(frozen=True)
class StepFinished:
    result: StepResult


Event = StepStarted | StepFinished
Listener = Callable[[Event], None]
