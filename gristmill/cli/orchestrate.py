"""Commands that operate runs over time: runs, logs, cancel, retry, scheduler, serve."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from gristmill._util.durations import parse_duration
from gristmill.cli.common import EnvOpt, ProjectOpt, TargetOpt, app, console, render
from gristmill.cli.common import open_workspace as _workspace
from gristmill.errors import ConfigError


@app.command()
def runs(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status: running, success, failed, cancelled.")
    ] = None,
    asset: Annotated[
        str | None, typer.Option("--asset", "-a", help="Only runs that built this asset.")
    ] = None,
    command: Annotated[
        str | None, typer.Option(help="Only runs started this way: run, schedule, backfill, retry, check.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only runs started since: a date (2024-05-01) or a duration ago (2h, 7d)."),
    ] = None,
) -> None:
    """List recent runs, newest first, optionally filtered."""
    workspace = _workspace(project, target=target)
    found = workspace.runs(limit, status=status, command=command, asset=asset, since=_since(since))
    if not found:
        console.print("No runs match." if any((status, asset, command, since)) else "No runs yet.")
        return
    console.print(render.runs_table(found))


def _since(text: str | None) -> str | None:
    if not text:
        return None
    ago = parse_duration(text)
    if ago is not None:
        return (datetime.now(UTC) - ago).isoformat(timespec="milliseconds")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f'--since "{text}" is neither a date nor a duration', hint="e.g. 2024-05-01 or 2h"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


@app.command()
def logs(
    run_id: Annotated[int, typer.Argument(help="The run.")],
    step: Annotated[str | None, typer.Argument(help="Only this step (asset name).")] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    grep: Annotated[str | None, typer.Option(help="Only lines containing this text (any case).")] = None,
) -> None:
    """Show what a run's steps logged: attempts, retries, errors and the connectors' own messages."""
    workspace = _workspace(project, target=target)
    lines = workspace.logs(run_id, step, grep=grep)
    if not lines:
        console.print(
            "No log lines match."
            if grep
            else f"Run {run_id} logged nothing" + (f" for {step}." if step else ".")
        )
        return
    for line in lines:
        style = {"ERROR": "red", "WARNING": "yellow"}.get(line.level, "")
        attempt = f" #{line.attempt}" if line.attempt > 1 else ""
        console.print(
            Text.assemble(
                (line.at.replace("T", " ")[:23], "dim"),
                " ",
                (f"{line.asset}{attempt}", "bold"),
                " ",
                (line.message, style),
            ),
            soft_wrap=True,
        )


@app.command()
def cancel(
    run_id: Annotated[int, typer.Argument(help="The running run to stop.")],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.")] = 30.0,
) -> None:
    """Stop a running run: the steps it is building roll back, nothing half-built is published,
    what already succeeded stays."""
    record = _workspace(project, target=target).cancel(run_id, wait=wait)
    if record.status != "cancelled":
        # It ended before it saw the request (it polls a few times a second), or its process died.
        why = f" ({record.summary['error']})" if record.summary.get("error") else ""
        console.print(
            f"Run {run_id} was not cancelled: it ended {record.status}{why} before the cancel reached it."
        )
        raise typer.Exit(1)
    console.print(f"Run {run_id} stopped: {record.status}.")


@app.command()
def retry(
    run_id: Annotated[int, typer.Argument(help="The run whose failed steps to run again.")],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait if another run holds the project.")] = 0.0,
) -> None:
    """Run again only what a run failed, or did not run because of a failure or a cancel."""
    workspace = _workspace(project, target=target)
    failed = workspace.failed_steps(run_id)
    if not failed:
        console.print(f"Run {run_id} has no failed steps: nothing to retry.")
        return
    result = workspace.run(failed, wait=wait, command=f"retry {run_id}")
    console.print(render.run_table(result))
    render.failures(result, console)
    console.print(render.summary_line(result))
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def scheduler(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    port: Annotated[
        int | None,
        typer.Option(help="HTTP port for /metrics and webhooks ([server] port; 0: any free port)."),
    ] = None,
    no_http: Annotated[bool, typer.Option("--no-http", help="No HTTP endpoint.")] = False,
) -> None:
    """Run the schedules in gristmill.toml until stopped (Ctrl-C or SIGTERM waits for the running
    run; a second Ctrl-C cancels it). Serves Prometheus /metrics and POST /hooks/<schedule>."""
    _serve(project, port, target, http=not no_http)


@app.command()
def serve(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    port: Annotated[int | None, typer.Option(help="HTTP port ([server] port; 0: any free port).")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on ([server] host, else 127.0.0.1: this machine only)."),
    ] = None,
    env: EnvOpt = "prod",
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve /api/v1 without API keys (loopback only; `gristmill keys`)."),
    ] = False,
    allow_sql: Annotated[
        bool | None,
        typer.Option("--allow-sql/--no-sql", help="POST /api/v1/sql: read-only SQL ([server] allow_sql)."),
    ] = None,
    pg_port: Annotated[
        int | None,
        typer.Option(help="Open the PostgreSQL wire door for BI tools on this port ([server] pg_port)."),
    ] = None,
    pg_tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate for the wire door's TLS (needed off loopback).")
    ] = None,
    pg_tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --pg-tls-cert.")] = None,
) -> None:
    """One process for a laptop or a small server: the data API (/api/v1/tables, /docs), /metrics,
    /healthz, webhooks, and the scheduler when gristmill.toml declares schedules. The data API
    needs an API key (`gristmill keys create`) unless --no-auth on loopback."""
    if (pg_tls_cert is None) != (pg_tls_key is None):
        raise typer.BadParameter("--pg-tls-cert and --pg-tls-key go together")
    tls = (str(pg_tls_cert), str(pg_tls_key)) if pg_tls_cert and pg_tls_key else None
    doors = {"no_auth": no_auth, "allow_sql": allow_sql, "pg_port": pg_port, "pg_tls": tls}
    _serve(project, port, target, http=True, host=host, env=env, **doors)


def _serve(
    project: Path,
    port: int | None,
    target: str | None,
    *,
    http: bool,
    host: str | None = None,
    env: str = "prod",
    **doors: Any,
) -> None:
    def announce(names: list[str], url: str | None) -> None:
        where = f"http://{url.split('://', 1)[1]}" if url is not None else ""
        if names:
            where = f", {where}" if where else ""
            console.print(f"Scheduler running: {', '.join(names)}{where} (Ctrl-C stops)", highlight=False)
        else:
            console.print(f"Serving {where} (no schedules; Ctrl-C stops)", highlight=False)
        if url is not None and http:
            console.print(f"Web UI: open http://{url.split('://', 1)[1]}/ in a browser", highlight=False)

    _workspace(project, target=target).serve(
        port=port, http=http, announce=announce, host=host, env=env, **doors
    )
    console.print("Scheduler stopped.")
