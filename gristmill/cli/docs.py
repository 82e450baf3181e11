"""``gristmill docs build``: the catalog, asset pages, lineage graph, model SQL and checks as a
static site that opens from ``file://`` (docs/docs-site.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gristmill.cli.common import EnvOpt, ProjectOpt, TargetOpt, app, console, open_workspace

docs_app = typer.Typer(
    help="A static docs site of the project: catalog, lineage graph, SQL.", no_args_is_help=True
)
app.add_typer(docs_app, name="docs")


@docs_app.command("build")
def build(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the site, replaced (default: target/docs).")
    ] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    env: EnvOpt = "prod",
    with_samples: Annotated[
        bool, typer.Option("--with-samples", help="Include each asset's first rows, personal data masked.")
    ] = False,
) -> None:
    """Write the UI's catalog, asset and graph pages as files, every link relative: open
    OUT/index.html in a browser, or publish the folder anywhere static files are served."""
    from gristmill.workspace.docs_site import build_docs_site

    workspace = open_workspace(project, target=target)
    folder = out if out is not None else Path(project) / "target" / "docs"
    built = build_docs_site(workspace, folder, env=env, samples=with_samples)
    console.print(f"wrote {built.pages} pages ({built.assets} assets) to {escape(str(built.out))}/index.html")
