"""The types the workspace hands back and takes, for the interfaces that render and build them
(the CLI, the server): they import these from here, never from the layers below the workspace.

Importing this module imports the runtime: interfaces do it when they render, not at start-up."""

from gristmill.plan import Plan
from gristmill.plan.intervals import parse_moment
from gristmill.plan.lineage import Lineage, Node
from gristmill.runtime.audit import CheckResult
from gristmill.runtime.backfill import BackfillResult
from gristmill.runtime.checker import CheckRun
from gristmill.runtime.events import (
    Event,
    RunFinished,
    RunStarted,
    RunStopping,
    StepFinished,
    StepRetrying,
    StepStarted,
)
from gristmill.runtime.executor import RunResult, StepResult
from gristmill.runtime.published import AssetInfo
from gristmill.state.records import BackfillRecord, PartitionRecord, RunRecord, StepRecord

__all__ = [
    "AssetInfo",
    "BackfillRecord",
    "BackfillResult",
    "CheckResult",
    "CheckRun",
    "Event",
    "Lineage",
    "Node",
    "PartitionRecord",
    "Plan",
    "RunFinished",
    "RunRecord",
    "RunResult",
    "RunStarted",
    "RunStopping",
    "StepFinished",
    "StepRecord",
    "StepResult",
    "StepRetrying",
    "StepStarted",
    "parse_moment",
]
