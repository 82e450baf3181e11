"""The data diff of a workspace's project, for every interface (``gristmill diff``, ``plan --diff``,
the web UI): a function over the workspace, not another method on it (``Workspace`` keeps to its
budget of verbs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.runtime.diffresult import DataDiff, DiffRequest
    from gristmill.workspace.facade import Workspace


def diff(workspace: Workspace, request: DiffRequest) -> DataDiff:
    """One table compared between two environments or snapshots, by key, in the engine (see
    ``DiffRequest`` for the sides and ``DataDiff`` for the answer)."""
    from gristmill.runtime.datadiff import diff as compare

    return compare(workspace.project, workspace.graph, request)
