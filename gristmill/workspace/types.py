"""The types the workspace hands back and takes, for the interfaces that render and build them:
they import these from here, never from the layers below the workspace.

Each name is imported from where it lives on first use: a command that shows a run's progress
does not import the stream loop, nor ``--help`` anything at all."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

_WHERE = {
    "AssetInfo": "gristmill.runtime.published",
    "BackfillRecord": "gristmill.state.records",
    "BackfillResult": "gristmill.runtime.backfill",
    "CheckResult": "gristmill.runtime.results",
    "CheckRun": "gristmill.runtime.results",
    "CompiledModel": "gristmill.runtime.compiled",
    "DataDiff": "gristmill.runtime.diffresult",
    "DiffRequest": "gristmill.runtime.diffresult",
    "Event": "gristmill.runtime.run.events",
    "Lineage": "gristmill.plan.lineage",
    "KeyProblems": "gristmill.runtime.diffresult",
    "Node": "gristmill.plan.lineage",
    "PartitionRecord": "gristmill.state.records",
    "Plan": "gristmill.plan",
    "RowDiff": "gristmill.runtime.diffresult",
    "RunFinished": "gristmill.runtime.run.events",
    "RunRecord": "gristmill.state.records",
    "RunResult": "gristmill.runtime.results",
    "RunStarted": "gristmill.runtime.run.events",
    "RunStopping": "gristmill.runtime.run.events",
    "SchemaDiff": "gristmill.runtime.diffresult",
    "StepFinished": "gristmill.runtime.run.events",
    "StepRecord": "gristmill.state.records",
    "StepResult": "gristmill.runtime.results",
    "StepRetrying": "gristmill.runtime.run.events",
    "StepStarted": "gristmill.runtime.run.events",
    "StreamSettings": "gristmill.streaming.settings",
    "StreamStats": "gristmill.streaming.stats",
    "UnitTestResult": "gristmill.runtime.unittests",
    "UnitTestRun": "gristmill.runtime.unittests",
    "describe": "gristmill.plan.intervals",
    "parse_moment": "gristmill.plan.intervals",
    "shift": "gristmill.plan.intervals",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value
