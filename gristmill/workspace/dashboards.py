"""The dashboards verbs over a workspace (``gristmill dashboards list/build``): the CLI comes
here, never to ``gristmill.dashboards`` itself (it imports only the workspace)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.project.dashboard_specs import Dashboard
    from gristmill.workspace.facade import Workspace


def checked_dashboards(workspace: Workspace) -> dict[str, Dashboard]:
    """The project's dashboards, each sql block passed through the read-only SQL guard over the
    project's tables (a refused one is a ``file:line`` error)."""
    from gristmill.dashboards.reading import check_guarded

    served = list(workspace.graph.assets)
    for dashboard in workspace.project.dashboards.values():
        check_guarded(dashboard, served)
    return workspace.project.dashboards


def build_dashboards(
    workspace: Workspace, out: Path, names: Sequence[str] = (), env: str = "prod"
) -> list[Path]:
    """Static, self-contained HTML files of ``names`` (default: every dashboard) in ``out``."""
    from gristmill.dashboards.build import build_dashboards as build

    tables = workspace.reader(env)
    try:
        return build(workspace.project, tables, out, names)
    finally:
        tables.close()
