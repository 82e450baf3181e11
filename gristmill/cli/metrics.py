"""``gristmill metrics list`` and ``gristmill metrics query``: the metrics of ``metrics/*.yml``,
asked by dimensions, a time grain and filters, on the tables an environment serves."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gristmill.cli.common import EnvOpt, ProjectOpt, TargetOpt, VarsOpt, app, console, errors
from gristmill.cli.common import open_workspace as _workspace
from gristmill.errors import BadQuery

metrics_app = typer.Typer(
    help="List the project's metrics (metrics/*.yml) and query them by dimension and time grain.",
    no_args_is_help=True,
)
app.add_typer(metrics_app, name="metrics")

FORMATS = ("table", "json", "csv")


@metrics_app.command("list")
def list_metrics(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    dbt_vars: VarsOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """List the metrics with their type, the dimensions they can be grouped and filtered by,
    and where each is declared."""
    infos = _workspace(project, dbt_vars, target).metrics()
    if format == "json":
        from gristmill.cli.jsonout import dumps

        sys.stdout.write(dumps({"metrics": [i.as_dict() for i in infos]}) + "\n")
        return
    if format != "table":
        raise BadQuery(f'unknown format "{format}"', parameter="--format", hint="use table or json")
    if not infos:
        console.print(
            "No metrics yet: declare semantic models and metrics in metrics/*.yml (see docs/metrics.md)."
        )
        return
    table = Table(show_edge=False)
    for column in ("metric", "type", "dimensions", "declared"):
        table.add_column(column)
    for info in infos:
        name = info.name + (f" [dim]({escape(info.label)})[/]" if info.label else "")
        table.add_row(name, info.type, escape(", ".join(info.dimensions)), escape(info.location))
    console.print(table)


@metrics_app.command("query")
def query_metric(
    name: Annotated[str, typer.Argument(help="The metric, as `gristmill metrics list` names it.")],
    by: Annotated[
        list[str],
        typer.Option("--by", "-b", help="A dimension to group by (repeat it, or separate with commas)."),
    ] = [],  # noqa: B006 - typer reads defaults, never mutates them
    grain: Annotated[
        str | None,
        typer.Option("--grain", "-g", help="Group by metric_time at day, week, month, quarter or year."),
    ] = None,
    where: Annotated[
        list[str],
        typer.Option(
            "--where",
            "-w",
            help="A filter dimension:op:value (ops eq ne gt gte lt lte in not_in is_null not_null), "
            "e.g. country:in:DE,FR; repeat for several (all must hold).",
        ),
    ] = [],  # noqa: B006
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL the query runs instead of running it.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Rows to print as a table (csv and json print all).")] = 100,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    env: EnvOpt = "prod",
    dbt_vars: VarsOpt = None,
) -> None:
    """Compute a metric on the tables ENV serves, grouped by metric_time at --grain and by the
    --by dimensions, filtered by --where (values are data, never SQL)."""
    if format not in FORMATS:
        raise BadQuery(f'unknown format "{format}"', parameter="--format", hint="use table, json or csv")
    workspace = _workspace(project, dbt_vars, target)
    answer = workspace.metric(name, by=by, grain=grain, where=where, env=env, run=not sql)
    if answer.preaggregation:  # on stderr: the answer on stdout stays what it was
        errors.print(f"[dim]read from the pre-aggregation {escape(answer.preaggregation)}[/]")
    if sql:
        sys.stdout.write(answer.sql + ";\n")
        return
    from gristmill.cli import render

    result = answer.table
    if format == "table":
        console.print(render.arrow_as(result.slice(0, limit), "table"))
        if result.num_rows > limit:
            errors.print(f"[dim]{result.num_rows - limit:,} more rows; use --limit or --format csv[/]")
        return
    sys.stdout.write(str(render.arrow_as(result, format)) + ("\n" if format == "json" else ""))
