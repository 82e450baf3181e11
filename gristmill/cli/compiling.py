"""``gristmill compile``: print the SQL each selected model runs, for the target's engine or
another dialect."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gristmill.cli.common import EnvOpt, ExcludeOpt, ProjectOpt, SelectOpt, TargetOpt, VarsOpt, app, errors
from gristmill.cli.common import open_workspace as _workspace


@app.command("compile")
def compile_models(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    select: SelectOpt = [],  # noqa: B006 - typer reads defaults, never mutates them
    exclude: ExcludeOpt = [],  # noqa: B006
    env: EnvOpt = "prod",
    dialect: Annotated[
        str | None,
        typer.Option(
            "--dialect",
            "-d",
            help="duckdb, postgres, redshift or spark (default: the target's engine).",
        ),
    ] = None,
    dbt_vars: VarsOpt = None,
) -> None:
    """Print each selected model's query as the target's engine would run it (reading the
    relations ENV serves), without opening the engine or the state. --dialect renders it for
    another engine, redshift included, ahead of its engine."""
    workspace = _workspace(project, dbt_vars, target)
    compiled = workspace.compile(select, exclude, env=env, dialect=dialect)
    if workspace.target is not None:
        errors.print(escape(workspace.target), highlight=False, soft_wrap=True)  # stdout: SQL only
    written = 0
    for model in compiled:
        if model.sql is None:
            why = model.problem or "a Python model: its query is made when it runs"
            errors.print(f"{escape(model.file)}: {escape(why)}", highlight=False, soft_wrap=True)
            continue
        sys.stdout.write(("\n" if written else "") + f"-- {model.model}\n{model.sql};\n")
        written += 1
    if not compiled:
        errors.print("No models selected.")
    if any(m.problem for m in compiled):
        raise typer.Exit(1)
