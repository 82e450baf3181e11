"""``gristmill diff``: one table compared between two environments or snapshots, as Rich tables or
one JSON document. Exit code 0: equal; 1: different; 2: the diff could not be made."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gristmill.cli.common import EnvOpt, Output, OutputOpt, ProjectOpt, TargetOpt, app, console, errors
from gristmill.cli.common import open_workspace as _workspace
from gristmill.errors import ConfigError, GristmillError

if TYPE_CHECKING:
    from gristmill.workspace import Workspace
    from gristmill.workspace.types import DataDiff, Plan

EQUAL, DIFFERENT, FAILED = 0, 1, 2
"""Exit codes: like ``diff(1)``, so a script can tell "different" from "could not compare"."""


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


@app.command()
def diff(
    table: Annotated[str, typer.Argument(help="The asset to compare: schema.name (or name alone).")],
    env: EnvOpt = "dev",
    against: Annotated[
        str | None, typer.Option("--against", help="The environment to compare with (default prod).")
    ] = None,
    snapshot: Annotated[
        int | None, typer.Option("--snapshot", help="Compare with the table as it was at this lake snapshot.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Compare with the table as it was at this time (ISO 8601).")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Columns identifying a row, comma-separated.")
    ] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Compare only these columns.")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Rows shown of each kind of difference.")] = 10,
    tolerance: Annotated[
        float | None, typer.Option("--tolerance", help="Floats: differences up to this are no change.")
    ] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Compare TABLE in --env with another environment or an earlier snapshot, row by row by key:
    schema, row counts, rows added, removed and changed, changes per column and a sample of each.
    Exit code 0 when equal, 1 when different, 2 when the diff could not be made."""
    try:
        if snapshot is not None and as_of is not None:
            raise ConfigError("--snapshot and --as-of both name the earlier side", hint="pass one of them")
        travel = snapshot is not None or as_of is not None  # the earlier side defaults to --env's past
        workspace = _workspace(project, None, target)
        from gristmill.workspace.diffing import diff as compare
        from gristmill.workspace.types import DiffRequest

        result = compare(
            workspace,
            DiffRequest(
                table=table,
                env=env,
                against=against if against is not None else (None if travel else "prod"),
                snapshot=snapshot,
                as_of=as_of,
                key=_names(key),
                columns=_names(columns),
                sample=max(sample, 0),
                tolerance=tolerance,
            ),
        )
    except GristmillError as err:
        errors.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
        if err.hint:
            errors.print(f"[dim]hint:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(FAILED) from None
    if output == Output.json:
        from gristmill.cli.jsonout import dumps

        sys.stdout.write(dumps({"format": "gristmill/diff", **result.to_dict()}) + "\n")
    else:
        console.print(render_diff(result))
    raise typer.Exit(EQUAL if result.equal else DIFFERENT)


def render_diff(result: DataDiff) -> RenderableType:
    """The diff as Rich renderables: a headline, then only the parts that differ."""
    parts: list[RenderableType] = [_headline(result)]
    schema = result.schema
    if not schema.equal:
        table = Table(title="Schema", title_justify="left", show_edge=False, min_width=40)
        for column in ("column", "change", result.base, result.head):
            table.add_column(escape(column))
        for name, dtype in schema.added:
            table.add_row(escape(name), "[green]added[/]", "", escape(dtype))
        for name, dtype in schema.removed:
            table.add_row(escape(name), "[red]removed[/]", escape(dtype), "")
        for name, old, new in schema.retyped:
            table.add_row(escape(name), "[yellow]retyped[/]", escape(old), escape(new))
        parts.append(table)
    changed = {c: n for c, n in result.column_changes.items() if n}
    if changed:
        table = Table(title="Changed values by column", title_justify="left", show_edge=False, min_width=40)
        table.add_column("column")
        table.add_column("rows", justify="right")
        for name, count in sorted(changed.items(), key=lambda item: -item[1]):
            table.add_row(escape(name), f"{count:,}")
        parts.append(table)
    for side, problems in (("base", result.base_keys), ("head", result.head_keys)):
        if problems.any:
            label = result.base if side == "base" else result.head
            parts.append(
                Text(
                    f"{label}: {_count(problems.null_keys, 'row')} with a NULL key, "
                    f"{_count(problems.duplicate_keys, 'key')} held by {problems.duplicate_rows:,} rows"
                    " — left out of the comparison",
                    style="yellow",
                )
            )
            if problems.sample:
                parts.append(_rows_table(f"Duplicated keys in {label}", list(problems.sample)))
    for kind in ("added", "removed", "changed"):
        rows = result.samples.get(kind, ())
        if rows:
            shown = [_sample_row(row.key, row.base, row.head, row.changed) for row in rows]
            parts.append(_rows_table(f"Sample of {kind} rows", shown))
    return Group(*parts)


def _headline(result: DataDiff) -> Text:
    verdict = Text("EQUAL", style="bold green") if result.equal else Text("DIFFERENT", style="bold yellow")
    text = Text.assemble(
        verdict,
        f"  {result.table}: {result.head} against {result.base}, key ({', '.join(result.key)}) from "
        f"{result.key_from}\n",
        f"rows {result.base_rows:,} -> {result.head_rows:,}: ",
        (f"{result.added:,} added", "green"),
        ", ",
        (f"{result.removed:,} removed", "red"),
        ", ",
        (f"{result.changed:,} changed", "yellow"),
        f", {result.unchanged:,} unchanged",
    )
    if result.tolerance is not None:
        text.append(f" (floats within {result.tolerance:g} count as unchanged)", style="dim")
    return text


def _sample_row(
    key: dict[str, Any], base: dict[str, Any] | None, head: dict[str, Any] | None, changed: tuple[str, ...]
) -> dict[str, Any]:
    """Key columns, then each shown column as its value, or ``old -> new`` where it changed."""
    row: dict[str, Any] = dict(key)
    values = head if head is not None else base or {}
    for name, value in values.items():
        if name in changed and base is not None and head is not None:
            row[name] = f"{_show(base[name])} -> {_show(head[name])}"
        elif not changed or name in changed:
            row[name] = value
    return row


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _show(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=escape(title), title_justify="left", show_edge=False, min_width=40)
    names = list(dict.fromkeys(name for row in rows for name in row))
    for name in names:
        table.add_column(escape(name), overflow="fold")
    for row in rows:
        table.add_row(*(escape(_show(row.get(name))) for name in names))
    return table


def plan_diffs_document(workspace: Workspace, plan: Plan) -> list[dict[str, Any]]:
    """``plan --diff -o json``: one entry per changed model, its diff or why there is none."""
    from gristmill.workspace.diffing import plan_diffs

    return [
        {"asset": name, "diff": found.to_dict()}
        if not isinstance(found, str)
        else {"asset": name, "skipped": found}
        for name, found in plan_diffs(workspace, plan)
    ]


def print_plan_diffs(workspace: Workspace, plan: Plan) -> None:
    """``plan --diff``: under the plan, each changed model's diff against prod."""
    from gristmill.workspace.diffing import plan_diffs

    if plan.env == "prod":
        console.print("[dim]--diff compares an environment's tables with prod's: plan ENV --diff[/]")
        return
    found = plan_diffs(workspace, plan)
    if not found:
        console.print(f"[dim]No model of {plan.env} differs from prod's: nothing to diff[/]")
    for name, result in found:
        console.print()
        if isinstance(result, str):
            console.print(f"[bold]{escape(name)}[/]: [dim]no diff: {escape(result)}[/]")
        else:
            console.print(render_diff(result))
