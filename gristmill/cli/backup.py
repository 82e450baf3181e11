"""``gristmill backup DEST``, ``gristmill restore SRC`` and ``gristmill backups list DEST``.

DEST and SRC are local folders or ``s3://bucket/prefix`` URLs; S3 credentials and endpoint come
from the usual AWS settings (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, a profile…)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gristmill.cli.common import Output, OutputOpt, ProjectOpt, TargetOpt, app, console

if TYPE_CHECKING:
    from gristmill.workspace.backups import BackupInfo

backups_app = typer.Typer(help="Backups of the lake: list those in a folder.", no_args_is_help=True)
app.add_typer(backups_app, name="backups")


def _describe(info: BackupInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "url": info.url,
        "complete": info.complete,
        "project": info.project,
        "snapshot": info.snapshot,
        "created_at": info.created_at,
        "files": len(info.files),
        "bytes": info.size,
    }


@app.command("backup")
def backup(
    dest: Annotated[
        str, typer.Argument(help="A folder or s3://bucket/prefix; the backup goes in a new folder in it.")
    ],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Copy the lake (catalog, data files) and run history consistently while runs continue."""
    from gristmill.workspace.backups import Backups

    info = Backups.for_project(project, target).backup(dest)
    if output == Output.json:
        typer.echo(json.dumps(_describe(info)))
        return
    console.print(
        f"[green]backed up[/] snapshot {info.snapshot}: {len(info.files)} files, "
        f"{info.size / 1e6:.1f} MB -> {escape(info.url)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("restore")
def restore(
    src: Annotated[str, typer.Argument(help="One backup's folder (as `gristmill backups list` shows).")],
    force: Annotated[bool, typer.Option("--force", help="Replace the project's current lake.")] = False,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Verify every file of a backup against its manifest, then swap it in as the project's lake."""
    from gristmill.workspace.backups import Backups

    info = Backups.for_project(project, target).restore(src, force=force)
    if output == Output.json:
        typer.echo(json.dumps(_describe(info)))
        return
    console.print(
        f"[green]restored[/] snapshot {info.snapshot} of {escape(info.project)} "
        f"({len(info.files)} files verified) from {escape(info.url)}",
        highlight=False,
        soft_wrap=True,
    )


@backups_app.command("list")
def listing(
    dest: Annotated[str, typer.Argument(help="The folder or s3://bucket/prefix backups were taken into.")],
    output: OutputOpt = Output.text,
) -> None:
    """The backups in a folder, oldest first; interrupted ones are shown as incomplete."""
    from gristmill.workspace.backups import Backups

    found = Backups.list(dest)
    if output == Output.json:
        typer.echo(json.dumps({"backups": [_describe(b) for b in found]}))
        return
    if not found:
        console.print(f"No backups in {escape(dest)}.")
        return
    table = Table("name", "state", "snapshot", "created", "files", "MB")
    for info in found:
        state = "complete" if info.complete else "[red]incomplete[/]"
        table.add_row(
            escape(info.name),
            state,
            str(info.snapshot or ""),
            info.created_at[:19],
            str(len(info.files)),
            f"{info.size / 1e6:.1f}",
        )
    console.print(table)
