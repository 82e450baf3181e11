"""What every command module shares: the Typer app they register on, the consoles, the options
that read alike in every command, and the workspace they call.

The command modules import this, not ``app.py`` (which imports them to register their commands)."""

from __future__ import annotations

import importlib.util
import sys
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.workspace import Workspace


def _lazy(name: str) -> ModuleType:
    """A module that is imported when first used: rendering needs pyarrow, the planner and the
    runtime (~0.4 CPU-s of imports), which `--help` and a mistyped option never use."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from gristmill.cli import render
else:
    render = _lazy("gristmill.cli.render")

app = typer.Typer(
    name="gristmill",
    help="Ingest, transform and check data from one project folder, embedded on DuckDB + Parquet.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
# Outside a terminal (CI logs, pipes) Rich would assume 80 columns and squeeze the tables.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        help="Project folder (default: the current one or the nearest parent holding gristmill.toml).",
    ),
]
SelectOpt = Annotated[
    list[str],
    typer.Option(
        "--select",
        "-s",
        help="Assets to include: name, +name (with "
        "upstream), name+ (with downstream), tag:x, source:y, schema.*",
    ),
]
ExcludeOpt = Annotated[list[str], typer.Option("--exclude", "-x", help="Assets to leave out (same syntax).")]
RefreshOpt = Annotated[bool, typer.Option("--full-refresh", help="Rebuild the selection even if unchanged.")]
EnvOpt = Annotated[
    str,
    typer.Option(
        "--env", "-e", help="Environment: prod serves <schema>.<name>, any other <schema>__<env>.<name>."
    ),
]

TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="The [targets.NAME] to work on: its engine and its own state. Else GRISTMILL_TARGET, "
        "else the target gristmill.toml names (docs/engines.md, Targets).",
    ),
]

VarsOpt = Annotated[
    str | None,
    typer.Option(
        "--vars",
        help="dbt projects: vars as a YAML or JSON mapping, over those of dbt_project.yml, "
        "as dbt's --vars (e.g. '{load_source_data: true}').",
    ),
]


def dbt_vars(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--vars is not YAML or JSON: {str(err).splitlines()[0]}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"--vars must be a mapping of names to values, not {text!r}",
            hint="e.g. --vars '{load_source_data: true, start_date: 2024-01-01}'",
        )
    return {str(k): v for k, v in value.items()}


class Output(StrEnum):
    """What a command prints: text for a person, or one JSON document for a script."""

    text = "text"
    json = "json"


OutputOpt = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        help="json: one JSON document on stdout and nothing else (shape in docs/cli.md, JSON output).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only failures (nothing when all is well).")
]


def open_workspace(project: Path, vars_text: str | None = None, target: str | None = None) -> Workspace:
    from gristmill.workspace import Workspace

    return Workspace(project, dbt_vars(vars_text), target=target)


def say_target(workspace: Workspace, out: Console | None = None) -> None:
    """One line naming the target and engine, for a project that declares targets."""
    described = workspace.target
    if described is not None:
        (out or console).print(f"[dim]{escape(described)}[/]", highlight=False, soft_wrap=True)


def warn(warnings: list[str]) -> None:
    for warning in warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")
