"""``gristmill compile``: print the SQL each selected model runs, for the target's engine or
another dialect."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

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
    described = workspace.target
    compiled = workspace.compile(select, exclude, env=env, dialect=dialect)
    if described is not None:
        errors.print(described, highlight=False, soft_wrap=True)  # stdout stays SQL to pipe
    for index, (model, sql) in enumerate(compiled):
        sys.stdout.write(("\n" if index else "") + f"-- {model}\n{sql};\n")
    if not compiled:
        errors.print("No SQL models selected.")
