"""``gristmill`` commands. Each parses its options, calls the workspace and renders the answer."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gristmill import __version__
from gristmill.errors import ConfigError, GristmillError, ProjectError


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


def _workspace(project: Path):  # type: ignore[no-untyped-def]
    from gristmill.workspace import Workspace

    return Workspace(project)


def _restate_range(text: str) -> tuple[datetime, datetime]:
    from gristmill.plan.intervals import parse_moment

    first, _, last = text.partition(":") if text.count(":") <= 1 else text.partition("..")
    try:
        start = parse_moment(first)
        end = parse_moment(last) if last else datetime.now(UTC)
    except ValueError as err:
        raise ConfigError(
            f'--restate "{text}": {err}', hint="write FROM[:TO] as dates, e.g. 2024-01-01:2024-02-01"
        ) from None
    if end <= start:
        raise ConfigError(f'--restate "{text}": TO must be after FROM')
    return start, end


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, ``kill``) stops a run like Ctrl-C: it rolls back, not dies."""
    import signal

    def stop(number: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")


def _version(value: bool) -> None:
    if value:
        console.print(f"gristmill {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Ingest, transform and check data from one project folder, embedded on DuckDB + Parquet."""


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Folder to create; also the project's name.")] = "shop",
    force: Annotated[bool, typer.Option("--force", help="Write into an existing, non-empty folder.")] = False,
) -> None:
    """Create a runnable example project: the Chinook music store, from a SQLite file and a JSON
    export through staging models to a star schema and a revenue mart."""
    from gristmill.project.scaffold import create_demo

    folder = create_demo(Path(name), force=force)
    console.print(f"Created [bold]{folder}[/] — next: [bold]cd {name} && gristmill run[/]")


@app.command()
def run(
    project: ProjectOpt = Path("."),
    select: SelectOpt = [],  # noqa: B006 - typer reads defaults, never mutates them
    exclude: ExcludeOpt = [],  # noqa: B006
    full_refresh: RefreshOpt = False,
    env: EnvOpt = "prod",
    wait: Annotated[float, typer.Option(help="Seconds to wait if another run holds the project.")] = 0.0,
    restate: Annotated[
        str | None,
        typer.Option(
            help="FROM[:TO] (dates; FROM..TO for timestamps): process these intervals of the selected "
            "time-range models again, e.g. after late or corrected source data. TO defaults to now."
        ),
    ] = None,
    partition: Annotated[
        list[str],
        typer.Option(
            help="Build only this declared partition of the selected models with partition_by (repeatable)."
        ),
    ] = [],  # noqa: B006
    report: ReportOpt = None,
    threads: Annotated[
        int | None, typer.Option(help="Steps at once ([run] threads in gristmill.toml, default 4).")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Stop the run after this long (e.g. 30m): running steps roll back.")
    ] = None,
) -> None:
    """Load sources, build models and run checks; only what changed since the last run. Changed
    models build into new tables; the environment's views switch to them together at the end.
    Ctrl-C (or SIGTERM, or `gristmill cancel RUN`) stops it: what is being built rolls back."""
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    from gristmill._util.durations import parse_duration
    from gristmill.runtime.events import StepFinished, StepRetrying, StepStarted

    limit = parse_duration(timeout) if timeout else None
    if timeout and limit is None:
        raise ConfigError(f'--timeout "{timeout}" is not a duration', hint="e.g. 90s, 30m, 2h")
    _stop_on_sigterm()
    workspace = _workspace(project)
    _warn(workspace.graph.warnings)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def listen(event: object) -> None:
            if isinstance(event, StepStarted):
                verb = "loading" if event.kind == "source" else "building"
                tasks[event.asset] = progress.add_task(f"{verb} {event.asset} [dim]({event.reason})[/]")
            elif isinstance(event, StepFinished) and event.result.asset in tasks:
                progress.remove_task(tasks.pop(event.result.asset))
            elif isinstance(event, StepRetrying):
                if event.asset in tasks:
                    progress.remove_task(tasks.pop(event.asset))
                console.print(
                    f"[yellow]retrying[/] {escape(event.asset)} in {event.delay:.1f}s "
                    f"(attempt {event.attempt} failed: {escape(event.error)})",
                    highlight=False,
                    soft_wrap=True,
                )

        result = workspace.run(
            select,
            exclude,
            env=env,
            full_refresh=full_refresh,
            wait=wait,
            listener=listen,
            restate=_restate_range(restate) if restate else None,
            partitions=[p for given in partition for p in given.split(",") if p] or None,
            threads=threads,
            timeout=limit.total_seconds() if limit else None,
        )
    if not result.steps:
        streams = [a.name for a in workspace.graph.assets.values() if a.kind == "stream"]
        console.print(
            f"Nothing to run: stream models run under `gristmill stream MODEL` ({', '.join(streams)}); "
            "a run builds them only when selected with -s."
            if streams
            else "Nothing to run: the project declares no sources or models yet "
            "(add sources/<name>.yml or models/<schema>/<name>.sql)."
        )
        return
    console.print(render.run_table(result))
    render.failures(result, console)
    console.print(render.summary_line(result))
    if report is not None:
        audited = [s.asset for s in result.steps if s.checks or s.metrics]
        _write_report(workspace, report, result.run_id, audited, env)
    if not result.ok:
        raise typer.Exit(1)


ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a self-contained HTML report here: results, failing rows, metric trends.",
        dir_okay=False,
    ),
]


@app.command()
def check(
    project: ProjectOpt = Path("."),
    select: SelectOpt = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    env: EnvOpt = "prod",
    report: ReportOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait if a run holds the project.")] = 0.0,
) -> None:
    """Run the checks on the tables the environment serves, without building: counts, failing
    rows, table metrics and anomalies against their history. Exits 1 when an error check fails."""
    workspace = _workspace(project)
    _warn(workspace.graph.warnings)
    result = workspace.check(select, exclude, env=env, wait=wait)
    if not result.assets:
        console.print("No checks declared for the selected assets (see docs/checks.md).")
        return
    console.print(render.check_table(result))
    render.check_failures(result, console)
    console.print(render.check_summary(result))
    if report is not None:
        _write_report(workspace, report, result.run_id, [a.asset for a in result.assets], env)
    if not result.ok:
        raise typer.Exit(1)


def _write_report(workspace, path: Path, run_id: int, assets: list[str], env: str) -> None:  # type: ignore[no-untyped-def]
    from gristmill.report import from_history, render_html

    checks, metrics = workspace.quality_history(assets, env=env)
    page = render_html(from_history(workspace.root.name, env, run_id, checks, metrics))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    console.print(f"Report: [bold]{path}[/]")


@app.command()
def plan(
    env: Annotated[str, typer.Argument(help="The environment to plan for.")] = "prod",
    project: ProjectOpt = Path("."),
    select: SelectOpt = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    full_refresh: RefreshOpt = False,
) -> None:
    """Show what `run --env ENV` would do and why, without changing anything: each model added,
    changed (breaking or non-breaking), affected through a column it reads, or unchanged."""
    workspace = _workspace(project)
    _warn(workspace.graph.warnings)
    result = workspace.plan(select, exclude, env=env, full_refresh=full_refresh)
    console.print(render.plan_table(result))
    console.print(render.plan_summary(result))


@app.command()
def promote(
    source: Annotated[str, typer.Argument(help="The environment whose tables to serve.")],
    to: Annotated[str, typer.Option("--to", help="The environment to switch.")] = "prod",
    project: ProjectOpt = Path("."),
) -> None:
    """Serve SOURCE's tables in another environment: a switch of views, nothing is rebuilt."""
    changed = _workspace(project).promote(source, to)
    for asset, physical in sorted(changed.items()):
        console.print(f"  {asset} [dim]-> {physical}[/]")
    console.print(f"Promoted {source} to {to}: {len(changed)} model{'s' * (len(changed) != 1)} switched")


@app.command()
def gc(
    project: ProjectOpt = Path("."),
    older_than: Annotated[
        int, typer.Option(help="Keep lake snapshots (time travel) younger than this many days.")
    ] = 7,
) -> None:
    """Drop model tables no environment serves any more, and the lake files only old snapshots use."""
    dropped = _workspace(project).gc(older_than_days=older_than)
    for name in dropped:
        console.print(f"  dropped {name}")
    console.print(
        f"{len(dropped)} unused table{'s' * (len(dropped) != 1)} dropped; old lake files cleaned up"
    )


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="An asset or one of its columns: schema.name[.column].")],
    project: ProjectOpt = Path("."),
    env: EnvOpt = "prod",
    upstream: Annotated[bool, typer.Option("--upstream/--no-upstream", help="Show what feeds it.")] = True,
    downstream: Annotated[
        bool, typer.Option("--downstream/--no-downstream", help="Show what reads it.")
    ] = True,
) -> None:
    """Column-level lineage: the columns a column is computed from, and the columns that read it."""
    result = _workspace(project).lineage(target, env)
    console.print(render.lineage_trees(result, upstream=upstream, downstream=downstream))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query; tables are named <schema>.<name>.")],
    project: ProjectOpt = Path("."),
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows to print as a table (csv and json print all).")] = 100,
    env: EnvOpt = "prod",
) -> None:
    """Run a read-only SQL query against the lake and print the result."""
    if format not in ("table", "csv", "json"):
        raise GristmillError(f'unknown format "{format}"', hint="use table, csv or json")
    result = _workspace(project).query(sql, env)
    if format == "table":
        console.print(render.arrow_as(result.slice(0, limit), "table"))
        if result.num_rows > limit:
            console.print(f"[dim]{result.num_rows - limit:,} more rows; use --limit or --format csv[/]")
    else:
        sys.stdout.write(str(render.arrow_as(result, format)))
        if format == "json":
            sys.stdout.write("\n")


@app.command("ls")
def list_assets(
    project: ProjectOpt = Path("."),
    select: SelectOpt = [],  # noqa: B006
    env: EnvOpt = "prod",
) -> None:
    """List assets with their kind, rows, when they were built and their last run."""
    console.print(render.assets_table(_workspace(project).assets(select, env)))


@app.command()
def history(
    run_id: Annotated[int | None, typer.Argument(help="Show the steps of this run.")] = None,
    project: ProjectOpt = Path("."),
    limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20,
) -> None:
    """List recent runs, or the steps of one run."""
    workspace = _workspace(project)
    if run_id is None:
        console.print(render.runs_table(workspace.runs(limit)))
    else:
        console.print(render.steps_table(workspace.steps(run_id)))


@app.command("test")
def unit_test(
    names: Annotated[list[str] | None, typer.Argument(help="Run only the tests with these names.")] = None,
    project: ProjectOpt = Path("."),
    select: Annotated[
        list[str],
        typer.Option(
            "--select", "-s", help="Run the tests of these models (name, +name, tag:x, schema.* ...)."
        ),
    ] = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
) -> None:
    """Run the unit tests in tests/*.yml: each model's SQL on the test's rows, in memory, compared
    with the expected rows. Needs no run and never touches the lake."""
    result = _workspace(project).test(names or [], select, exclude)
    if not result.results:
        chosen = names or select or exclude
        console.print("No unit tests match." if chosen else "No unit tests yet: add tests/<name>.yml.")
        return
    console.print(render.unit_tests_table(result))
    render.unit_test_details(result, console)
    console.print(render.unit_tests_summary(result))
    if not result.ok:
        raise typer.Exit(1)


from gristmill.cli import orchestrate as _orchestrate  # noqa: E402,F401 - registers its commands


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="gristmill")
    except GristmillError as err:
        errors.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
        if err.hint:
            errors.print(f"[dim]hint:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(err, ProjectError) else 1)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


from gristmill.cli import backfill as _backfill  # noqa: E402,F401 - registers its commands
from gristmill.cli import stream as _stream  # noqa: E402,F401 - registers its commands
