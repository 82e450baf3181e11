"""``gristmill`` commands. Each parses its options, calls the workspace and renders the answer."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.markup import escape

from gristmill import __version__
from gristmill._util.redaction import RedactingStream, install_log_redaction
from gristmill.cli.common import (
    EnvOpt,
    ExcludeOpt,
    Output,
    OutputOpt,
    ProjectOpt,
    QuietOpt,
    RefreshOpt,
    SelectOpt,
    TargetOpt,
    VarsOpt,
    app,
    console,
    errors,
    render,
    say_target,
)
from gristmill.cli.common import open_workspace as _workspace
from gristmill.cli.common import warn as _warn
from gristmill.errors import ConfigError, GristmillError, ProjectError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gristmill.workspace import Workspace
    from gristmill.workspace.types import RunResult

_DOCUMENT_OUT: list[TextIO] = []
"""Where the JSON document goes while ``--output json`` sends every other write to stdout (a
Python model's ``print()``) to stderr instead; restored when the command ends."""


def _json_output(output: Output) -> bool:
    if output == Output.json:
        _DOCUMENT_OUT.append(sys.stdout)
        sys.stdout = sys.stderr
    return output == Output.json


def _print_json(document: dict[str, object]) -> None:
    from gristmill.cli.jsonout import dumps

    out = _DOCUMENT_OUT[-1] if _DOCUMENT_OUT else sys.stdout
    out.write(dumps(document) + "\n")
    out.flush()


def _restore_stdout() -> None:
    while _DOCUMENT_OUT:
        sys.stdout = _DOCUMENT_OUT.pop()


def _restate_range(text: str) -> tuple[datetime, datetime]:
    from gristmill.workspace.types import parse_moment

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


def _start_watchdog(seconds: float | None, wait: float, grace: float) -> threading.Event:
    """The run's time limit before its first step: planning reads sources' schemas, and a read
    stuck there (a deadlock in the engine, a hung server) is out of the runner's reach. If the
    steps have not started within the limit (plus the grace period), say so and end the process;
    nothing was written yet. Set the event once the steps start."""
    started = threading.Event()
    if seconds is None or wait == float("inf"):
        return started

    def watch() -> None:
        if started.wait(seconds + grace + wait):
            return
        errors.print(
            f"[red]error:[/] the run did not get to its first step within its time limit ({seconds:g} s): "
            "it was stuck planning (reading a source's schema); nothing was written",
            highlight=False,
            soft_wrap=True,
        )
        sys.stderr.flush()
        os._exit(1)

    threading.Thread(target=watch, name="run time limit", daemon=True).start()
    return started


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
    from gristmill.workspace import create_demo

    folder = create_demo(Path(name), force=force)
    console.print(f"Created [bold]{folder}[/] — next: [bold]cd {name} && gristmill run[/]")


@app.command()
def run(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
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
    dbt_vars: VarsOpt = None,
    quiet: QuietOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Load sources, build models and run checks; only what changed since the last run. Changed
    models build into new tables; the environment's views switch to them together at the end.
    Ctrl-C (or SIGTERM, or `gristmill cancel RUN`) stops it: what is being built rolls back.
    Progress shows steps done of steps to build (`7/19`); outside a terminal, one line per step."""
    from gristmill._util.durations import parse_duration
    from gristmill.cli.progress import RunProgress

    as_json = _json_output(output)
    limit = parse_duration(timeout) if timeout else None
    if timeout and limit is None:
        raise ConfigError(f'--timeout "{timeout}" is not a duration', hint="e.g. 90s, 30m, 2h")
    _stop_on_sigterm()
    workspace = _workspace(project, dbt_vars, target)
    if not (quiet or as_json):
        _warn(workspace.graph.warnings)
        say_target(workspace)
    # JSON keeps stdout for the document; retries are news for a person, on stderr.
    with RunProgress(console, errors if as_json else console, quiet=quiet or as_json) as progress:
        settings = workspace.project.settings.run
        seconds = (
            limit.total_seconds()
            if limit
            else (settings.timeout.total_seconds() if settings.timeout else None)
        )
        started = _start_watchdog(seconds, wait, settings.stop_grace.total_seconds())
        try:
            result = workspace.run(
                select,
                exclude,
                env=env,
                full_refresh=full_refresh,
                wait=wait,
                listener=progress.listen,
                restate=_restate_range(restate) if restate else None,
                partitions=[p for given in partition for p in given.split(",") if p] or None,
                threads=threads,
                timeout=limit.total_seconds() if limit else None,
                runner=lambda coordinator: started.set(),
            )
        finally:
            started.set()
    if as_json:
        from gristmill.cli.jsonout import run_document

        _print_json(_with_target(run_document(result, env, workspace.graph.warnings), workspace))
    elif not result.steps:
        if not quiet:
            _nothing_to_run(workspace)
        return
    else:
        _print_run(result, quiet=quiet)
    if result.abandoned:
        _exit_abandoned(result.abandoned)
    if report is not None:
        audited = [s.asset for s in result.steps if s.checks or s.metrics]
        _write_report(workspace, report, result.run_id, audited, env, quiet=quiet or as_json)
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
    target: TargetOpt = None,
    select: SelectOpt = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    env: EnvOpt = "prod",
    report: ReportOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait if a run holds the project.")] = 0.0,
    dbt_vars: VarsOpt = None,
    quiet: QuietOpt = False,
    output: OutputOpt = Output.text,
    allow_unbuilt: Annotated[
        bool,
        typer.Option(
            "--allow-unbuilt", help="Exit 0 when selected assets were never built (their checks cannot run)."
        ),
    ] = False,
) -> None:
    """Run the checks on the tables the environment serves, without building: counts, failing
    rows, table metrics and anomalies against their history. Exits 1 when an error check fails,
    or when a selected asset with checks was never built (unless --allow-unbuilt)."""
    as_json = _json_output(output)
    workspace = _workspace(project, dbt_vars, target)
    if not (quiet or as_json):
        _warn(workspace.graph.warnings)
        say_target(workspace)
    result = workspace.check(select, exclude, env=env, wait=wait)
    if as_json:
        from gristmill.cli.jsonout import check_document

        _print_json(check_document(result, workspace.graph.warnings))
    elif not result.assets:
        if not quiet:
            console.print("No checks declared for the selected assets (see docs/checks.md).")
        return
    elif quiet:
        if not result.ok:
            console.print(render.check_table(result, only_failures=True))
            render.check_failures(result, console, only_failures=True)
            console.print(render.check_summary(result, allow_unbuilt=allow_unbuilt))
    else:
        console.print(render.check_table(result))
        render.check_failures(result, console)
        console.print(render.check_summary(result, allow_unbuilt=allow_unbuilt))
    unbuilt = [a.asset for a in result.assets if a.status == "not_built"]
    if unbuilt and not allow_unbuilt and not as_json:
        errors.print(
            f"{len(unbuilt)} asset{'s' * (len(unbuilt) != 1)} never built in this environment, so "
            f"{'their' if len(unbuilt) != 1 else 'its'} checks did not run: {escape(', '.join(unbuilt))}"
            "\n  hint: build them (gristmill run), or pass --allow-unbuilt to accept it",
            highlight=False,
            soft_wrap=True,
        )
    if report is not None:
        assets = [a.asset for a in result.assets]
        _write_report(workspace, report, result.run_id, assets, env, quiet=quiet or as_json)
    if not result.ok or (unbuilt and not allow_unbuilt):
        raise typer.Exit(1)


def _with_target(document: dict[str, Any], workspace: Workspace) -> dict[str, Any]:
    """A project with targets: the document says which one (and its engine) it is about."""
    return {**document, "target": workspace.target} if workspace.target is not None else document


def _nothing_to_run(workspace: Workspace) -> None:
    streams = [a.name for a in workspace.graph.assets.values() if a.kind == "stream"]
    console.print(
        f"Nothing to run: stream models run under `gristmill stream MODEL` ({', '.join(streams)}); "
        "a run builds them only when selected with -s."
        if streams
        else "Nothing to run: the project declares no sources or models yet "
        "(add sources/<name>.yml or models/<schema>/<name>.sql)."
    )


def _print_run(result: RunResult, *, quiet: bool) -> None:
    if quiet:
        render.failures(result, console, only_failures=True)
        if not result.ok:
            console.print(render.summary_line(result))
    else:
        console.print(render.run_table(result))
        render.failures(result, console)
        console.print(render.summary_line(result))


def _exit_abandoned(abandoned: Sequence[str]) -> None:
    errors.print(
        f"[red]warning:[/] {escape(', '.join(abandoned))} did not stop when asked; nothing "
        "it wrote is committed, and nothing was published (what succeeded is kept: the next run "
        "publishes it without rebuilding)",
        highlight=False,
        soft_wrap=True,
    )
    # Its thread may be stuck in the engine: exiting normally could wait on it forever.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _write_report(  # type: ignore[no-untyped-def]
    workspace, path: Path, run_id: int, assets: list[str], env: str, *, quiet: bool = False
) -> None:
    from gristmill.report import from_history, render_html

    checks, metrics = workspace.quality_history(assets, env=env)
    page = render_html(from_history(workspace.root.name, env, run_id, checks, metrics))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    if not quiet:
        console.print(f"Report: [bold]{escape(str(path))}[/]")


@app.command()
def plan(
    env: Annotated[str, typer.Argument(help="The environment to plan for.")] = "prod",
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    select: SelectOpt = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    full_refresh: RefreshOpt = False,
    dbt_vars: VarsOpt = None,
    output: OutputOpt = Output.text,
    diff: Annotated[
        bool, typer.Option("--diff", help="Also diff each changed model's ENV table against prod's, by key.")
    ] = False,
) -> None:
    """Show what `run --env ENV` would do and why, without changing anything: each model added,
    changed (breaking or non-breaking), affected through a column it reads, or unchanged."""
    as_json = _json_output(output)
    workspace = _workspace(project, dbt_vars, target)
    if as_json:
        from gristmill.cli.jsonout import plan_document

        result = workspace.plan(select, exclude, env=env, full_refresh=full_refresh)
        extra = {"diffs": _diff.plan_diffs_document(workspace, result)} if diff else {}
        _print_json(plan_document(result, workspace.graph.warnings) | extra)
        return
    _warn(workspace.graph.warnings)
    say_target(workspace)
    result = workspace.plan(select, exclude, env=env, full_refresh=full_refresh)
    console.print(render.plan_table(result))
    console.print(render.plan_summary(result))
    if diff:
        _diff.print_plan_diffs(workspace, result)


@app.command()
def promote(
    source: Annotated[str, typer.Argument(help="The environment whose tables to serve.")],
    to: Annotated[str, typer.Option("--to", help="The environment to switch.")] = "prod",
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
) -> None:
    """Serve SOURCE's tables in another environment: a switch of views, nothing is rebuilt."""
    changed = _workspace(project, target=target).promote(source, to)
    for asset, physical in sorted(changed.items()):
        console.print(f"  {asset} [dim]-> {physical}[/]")
    console.print(f"Promoted {source} to {to}: {len(changed)} model{'s' * (len(changed) != 1)} switched")


@app.command()
def gc(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    older_than: Annotated[
        int, typer.Option(help="Keep lake snapshots (time travel) younger than this many days.")
    ] = 7,
) -> None:
    """Drop model tables no environment serves any more, and the lake files only old snapshots use."""
    dropped = _workspace(project, target=target).gc(older_than_days=older_than)
    for name in dropped:
        console.print(f"  dropped {name}")
    console.print(
        f"{len(dropped)} unused table{'s' * (len(dropped) != 1)} dropped; old lake files cleaned up"
    )


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="An asset or one of its columns: schema.name[.column].")],
    project: ProjectOpt = Path("."),
    on_target: TargetOpt = None,
    env: EnvOpt = "prod",
    upstream: Annotated[bool, typer.Option("--upstream/--no-upstream", help="Show what feeds it.")] = True,
    downstream: Annotated[
        bool, typer.Option("--downstream/--no-downstream", help="Show what reads it.")
    ] = True,
    dbt_vars: VarsOpt = None,
) -> None:
    """Column-level lineage: the columns a column is computed from, and the columns that read it."""
    result = _workspace(project, dbt_vars, on_target).lineage(target, env)
    console.print(render.lineage_trees(result, upstream=upstream, downstream=downstream))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query; tables are named <schema>.<name>.")],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows to print as a table (csv and json print all).")] = 100,
    env: EnvOpt = "prod",
    dbt_vars: VarsOpt = None,
) -> None:
    """Run a read-only SQL query against the lake and print the result."""
    if format not in ("table", "csv", "json"):
        raise GristmillError(f'unknown format "{format}"', hint="use table, csv or json")
    result = _workspace(project, dbt_vars, target).query(sql, env)
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
    target: TargetOpt = None,
    select: SelectOpt = [],  # noqa: B006
    env: EnvOpt = "prod",
    dbt_vars: VarsOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """List assets with their kind, rows, when they were built and their last run."""
    as_json = _json_output(output)
    workspace = _workspace(project, dbt_vars, target)
    infos = workspace.assets(select, env)
    if as_json:
        from gristmill.cli.jsonout import assets_document

        _print_json(_with_target(assets_document(infos, env, workspace.graph.warnings), workspace))
        return
    say_target(workspace)
    console.print(render.assets_table(infos))


@app.command()
def history(
    run_id: Annotated[int | None, typer.Argument(help="Show the steps of this run.")] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20,
) -> None:
    """List recent runs, or the steps of one run."""
    workspace = _workspace(project, target=target)
    if run_id is None:
        console.print(render.runs_table(workspace.runs(limit)))
    else:
        console.print(render.steps_table(workspace.steps(run_id)))


@app.command("test")
def unit_test(
    names: Annotated[list[str] | None, typer.Argument(help="Run only the tests with these names.")] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    select: Annotated[
        list[str],
        typer.Option(
            "--select", "-s", help="Run the tests of these models (name, +name, tag:x, schema.* ...)."
        ),
    ] = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    dbt_vars: VarsOpt = None,
) -> None:
    """Run the unit tests in tests/*.yml (a dbt project's `unit_tests:`): each model's SQL on the
    test's rows, in memory, compared with the expected rows. Needs no run and never touches the lake."""
    result = _workspace(project, dbt_vars, target).test(names or [], select, exclude)
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


def _literal_help(command: Any) -> Any:
    """Help texts are prose, not Rich markup: ``[run] threads`` or ``[models.staging]`` would
    otherwise vanish as unknown style tags. Escaped once here, for every command and option."""
    command.help = escape(command.help) if command.help else command.help
    command.short_help = escape(command.short_help) if command.short_help else command.short_help
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            param.help = escape(text)
    for child in getattr(command, "commands", {}).values():  # a group's commands
        _literal_help(child)
    return command


def main(argv: list[str] | None = None) -> None:
    install_log_redaction()  # every log line of every command passes through redact()
    # and so does what a project's own Python prints while a command runs
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        _literal_help(typer.main.get_command(app))(args=argv, prog_name="gristmill")
    except GristmillError as err:
        errors.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
        if err.hint:
            errors.print(f"[dim]hint:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(err, ProjectError) else 1)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)
    finally:
        _restore_stdout()
        sys.stdout, sys.stderr = streams


from gristmill.cli import backfill as _backfill  # noqa: E402,F401 - registers its commands
from gristmill.cli import backup as _backup  # noqa: E402,F401 - registers its commands
from gristmill.cli import compiling as _compiling  # noqa: E402,F401 - registers its commands
from gristmill.cli import dashboards as _dashboards  # noqa: E402,F401 - registers its commands
from gristmill.cli import diff as _diff  # noqa: E402 - registers its commands
from gristmill.cli import docs as _docs  # noqa: E402,F401 - registers its commands
from gristmill.cli import keys as _keys  # noqa: E402,F401 - registers its commands
from gristmill.cli import metrics as _metrics  # noqa: E402,F401 - registers its commands
from gristmill.cli import stream as _stream  # noqa: E402,F401 - registers its commands
