"""The data diff of a workspace's project, for every interface (``gristmill diff``, ``plan --diff``,
the web UI): a function over the workspace, not another method on it (``Workspace`` keeps to its
budget of verbs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.plan import Plan
    from gristmill.runtime.diffresult import DataDiff, DiffRequest
    from gristmill.workspace.facade import Workspace


def diff(workspace: Workspace, request: DiffRequest) -> DataDiff:
    """One table compared between two environments or snapshots, by key, in the engine (see
    ``DiffRequest`` for the sides and ``DataDiff`` for the answer)."""
    from gristmill.runtime.datadiff import diff as compare

    return compare(workspace.project, workspace.graph, request)


def plan_diffs(
    workspace: Workspace, plan: Plan, against: str = "prod", sample: int = 5
) -> list[tuple[str, DataDiff | str]]:
    """For ``plan --diff``: each model the plan changes, or that ``plan.env`` serves from another
    table than ``against`` (what promoting would switch), with its diff against ``against`` — or,
    where there is none, why (not built on one side, no key declared)."""
    from gristmill.errors import GristmillError
    from gristmill.runtime.datadiff import diff as compare
    from gristmill.runtime.datadiff import served_apart
    from gristmill.runtime.diffresult import DiffRequest

    if plan.env == against:
        return []
    apart = served_apart(workspace.project, plan.env, against)
    found: list[tuple[str, DataDiff | str]] = []
    for step in plan.steps:
        changed = step.asset.kind != "source" and step.change not in ("unchanged", None)
        if step.asset.model is None or not (changed or step.name in apart):
            continue
        request = DiffRequest(table=step.name, env=plan.env, against=against, sample=sample)
        try:
            found.append((step.name, compare(workspace.project, workspace.graph, request)))
        except GristmillError as err:
            found.append((step.name, err.message))
    return found
