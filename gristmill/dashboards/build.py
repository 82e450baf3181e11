"""``gristmill dashboards build``: each dashboard as one self-contained HTML file — its data and
the chart scripts inlined — that opens from ``file://`` with no server and no network. Filters
show the values it was built with (defaults)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.dashboards.render import DashboardPages
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.server.reading import TableReader


def build_dashboards(
    project: Project, tables: TableReader, out: Path, names: Sequence[str] = ()
) -> list[Path]:
    unknown = [n for n in names if n not in project.dashboards]
    if unknown:
        raise ConfigError(
            f'no dashboard "{unknown[0]}"', hint=f"dashboards: {', '.join(project.dashboards) or 'none'}"
        )
    pages = DashboardPages(project, tables, scripts_url=None)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(project.dashboards):
        path = out / f"{name}.html"
        path.write_text(pages.page(name, {}, interactive=False).html, encoding="utf-8")
        written.append(path)
    return written
