"""``gristmill dashboards list/build``: the project's ``dashboards/*.md`` (docs/dashboards.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gristmill.cli.common import EnvOpt, ProjectOpt, TargetOpt, app, console, open_workspace

dashboards_app = typer.Typer(
    help="Dashboards as code: list them, or build static HTML copies to share.", no_args_is_help=True
)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("list")
def listing(project: ProjectOpt = Path("."), target: TargetOpt = None) -> None:
    """Every dashboard, checked (its SQL through the read-only guard): name, title, file."""
    from gristmill.workspace.dashboards import checked_dashboards

    dashboards = checked_dashboards(open_workspace(project, target=target))
    if not dashboards:
        console.print("No dashboards yet: write one in dashboards/NAME.md (docs/dashboards.md).")
        return
    table = Table("name", "title", "file", "blocks", "charts")
    for name, d in dashboards.items():
        table.add_row(escape(name), escape(d.title), d.location, str(len(d.data)), str(len(d.charts)))
    console.print(table)


@dashboards_app.command("build")
def build(
    name: Annotated[str | None, typer.Argument(help="One dashboard (default: every one).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the HTML files.")] = Path(
        "site/dashboards"
    ),
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    env: EnvOpt = "prod",
) -> None:
    """Write each dashboard as one self-contained HTML file (data and chart scripts inlined)."""
    from gristmill.workspace.dashboards import build_dashboards

    written = build_dashboards(open_workspace(project, target=target), out, [name] if name else [], env)
    for path in written:
        console.print(f"wrote {escape(str(path))}")
