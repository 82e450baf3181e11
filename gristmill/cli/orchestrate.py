"""Commands that operate runs over time: runs, logs, cancel, retry, scheduler, serve."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from gristmill._util.durations import parse_duration
from gristmill.cli.app import ProjectOpt, _workspace, app, console, render
from gristmill.cli.stream import read_statuses
from gristmill.errors import ConfigError, GristmillError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection  # multiprocessing: the scheduler only

    from gristmill.runtime.schedule.scheduler import Launch, Scheduler
    from gristmill.server.metrics import MetricsSnapshot


@app.command()
def runs(
    project: ProjectOpt = Path("."),
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
    workspace = _workspace(project)
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
    grep: Annotated[str | None, typer.Option(help="Only lines containing this text (any case).")] = None,
) -> None:
    """Show what a run's steps logged: attempts, retries, errors and the connectors' own messages."""
    workspace = _workspace(project)
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
    wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.")] = 30.0,
) -> None:
    """Stop a running run: the steps it is building roll back, nothing half-built is published,
    what already succeeded stays."""
    record = _workspace(project).cancel(run_id, wait=wait)
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
    wait: Annotated[float, typer.Option(help="Seconds to wait if another run holds the project.")] = 0.0,
) -> None:
    """Run again only what a run failed, or did not run because of a failure or a cancel."""
    workspace = _workspace(project)
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
    port: Annotated[
        int | None,
        typer.Option(help="HTTP port for /metrics and webhooks ([server] port; 0: any free port)."),
    ] = None,
    no_http: Annotated[bool, typer.Option("--no-http", help="No HTTP endpoint.")] = False,
) -> None:
    """Run the schedules in gristmill.toml until stopped (Ctrl-C or SIGTERM waits for the running
    run; a second Ctrl-C cancels it). Serves Prometheus /metrics and POST /hooks/<schedule>."""
    _serve(project, port, http=not no_http)


@app.command()
def serve(
    project: ProjectOpt = Path("."),
    port: Annotated[int | None, typer.Option(help="HTTP port ([server] port; 0: any free port).")] = None,
) -> None:
    """One process for a laptop or a small server: the scheduler plus the HTTP endpoint."""
    _serve(project, port, http=True)


def _serve(project: Path, port: int | None, *, http: bool) -> None:
    from gristmill.runtime.schedule.scheduler import Scheduler

    workspace = _workspace(project)
    root = workspace.root
    workspace.close()
    _configure_logging()
    sched = Scheduler(root, scheduled_run)
    if not sched.settings.schedules:
        raise ConfigError(
            "gristmill.toml declares no schedules",
            hint='add one, e.g. [schedules.hourly] cron = "0 * * * *"',
        )
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(number: int, frame: Any) -> None:
        signals["count"] += 1
        stop.set()
        sched.wake()
        if signals["count"] > 1:
            sched.cancel_running()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = None
    if http:
        server = _http(sched, port)
    names = ", ".join(sched.settings.schedules)
    where = f", http://{server.url.split('://', 1)[1]}" if server is not None else ""
    console.print(f"Scheduler running: {names}{where} (Ctrl-C stops)", highlight=False)
    try:
        sched.serve(stop)
    finally:
        if server is not None:
            server.stop()
    console.print("Scheduler stopped.")


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )


def _http(sched: Scheduler, port: int | None) -> Any:
    from gristmill.config.secrets import resolve
    from gristmill.server.app import HookResult, create_app
    from gristmill.server.http import BackgroundServer

    settings = sched.settings.server
    token = (
        resolve(settings.token, base=sched.root, where="gristmill.toml: [server] token")
        if settings.token
        else None
    )

    def on_hook(name: str, payload: dict[str, Any]) -> HookResult:
        accepted, message = sched.trigger(name, payload)
        return HookResult(accepted, name if accepted else None, "" if accepted else message)

    app_ = create_app(
        snapshot=lambda: _snapshot(sched), on_hook=on_hook, token=token, project=sched.settings.name
    )
    server = BackgroundServer(app_, settings.host, settings.port if port is None else port)
    server.start()
    return server


_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


def _snapshot(sched: Scheduler) -> MetricsSnapshot:
    from gristmill.server.metrics import MetricsSnapshot

    status = sched.status()
    stats = status["stats"]
    seconds: list[float] = stats["seconds"]
    return MetricsSnapshot(
        runs=stats["runs"],
        run_seconds_sum=sum(seconds),
        run_seconds_count=len(seconds),
        run_seconds_buckets={le: sum(1 for s in seconds if s <= le) for le in _BUCKETS},
        steps=stats["steps"],
        last_success=status["last_success"],
        freshness_lag=status["freshness_lag"],
        freshness_limit=status["freshness_limit"],
        schedule_lag=status["schedule_lag"],
        next_tick=status["next_tick"],
        scheduler_up=True,
        streams=tuple(read_statuses(sched.root)),
    )


def scheduled_run(root: Path, launch: Launch, conn: Connection) -> None:
    """The body of a scheduled run, in its own process: run the selection and report back."""
    from gristmill.runtime.run.events import RunStarted
    from gristmill.workspace import Workspace

    def listen(event: object) -> None:
        if isinstance(event, RunStarted):
            conn.send(("run", event.run_id))

    try:
        workspace = Workspace(root)
        result = workspace.run(
            list(launch.select),
            list(launch.exclude),
            env=launch.env,
            full_refresh=launch.full_refresh,
            wait=float("inf"),
            listener=listen,
            command=f"schedule {launch.schedule}",
        )
        conn.send(("done", result.status))
    except GristmillError as err:
        conn.send(("error", err.message))
    except KeyboardInterrupt:
        conn.send(("done", "cancelled"))
    finally:
        conn.close()
