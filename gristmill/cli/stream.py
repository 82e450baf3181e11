"""``gristmill stream`` runs a stream model continuously; ``gristmill streams`` shows the stream
processes (each writes its figures to ``.gristmill/streams/<model>-<pid>.json`` after each turn of
its loop, at most once a second: the file's ``updated_at`` is its heartbeat)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gristmill.cli.common import EnvOpt, ProjectOpt, TargetOpt, app, console
from gristmill.cli.common import open_workspace as _workspace
from gristmill.cli.common import warn as _warn
from gristmill.workspace.streams import RETENTION_DAYS

if TYPE_CHECKING:
    from gristmill.workspace.types import StreamStats


@app.command()
def stream(
    model: Annotated[str, typer.Argument(help="The stream model to run (kind: stream).")],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    env: EnvOpt = "prod",
    batch_size: Annotated[int, typer.Option(help="Messages per micro-batch at most.", min=1)] = 200_000,
    max_wait: Annotated[
        float, typer.Option(help="Seconds a micro-batch waits to fill (latency bound).", min=0.01)
    ] = 1.0,
    stop_when_idle: Annotated[
        float | None, typer.Option(help="Stop once no message arrived for this many seconds.")
    ] = None,
    compact_every: Annotated[
        int,
        typer.Option(
            help="Merge the small files of the stream's tables every this many batches (0: never).",
            min=0,
        ),
    ] = 100,
) -> None:
    """Run a stream model: micro-batches from its Kafka, NATS or MQTT source through its SQL into
    the lake, exactly once (offsets commit with the results). Ctrl-C or SIGTERM stops it after
    the batch in progress commits; start more processes to share a Kafka topic's partitions."""
    from gristmill.workspace.types import StreamSettings

    workspace = _workspace(project, target=target)
    _warn(workspace.graph.warnings)
    stop = threading.Event()

    def graceful(number: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now, the batch in progress rolls back
        stop.set()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    status = workspace.stream_status(model)
    last = [0.0]
    shown = [-1]

    def report(stats: StreamStats, *, final: bool = False, error: str | None = None) -> None:
        now = time.monotonic()
        if not final and now - last[0] < 1.0:
            return
        last[0] = now
        elapsed = max(time.time() - stats.started_at, 1e-9)
        figures = {
            **stats.as_dict(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "updated_at": time.time(),  # the heartbeat
            "max_wait": max_wait,  # the longest a quiet turn of the loop takes
            "events_per_second": stats.events / elapsed,
        }
        if final:
            figures["stopped"] = True
            if error:
                figures["error"] = error
        status.write(figures)
        if console.is_terminal and not final and stats.events != shown[0]:  # quiet turns say nothing
            shown[0] = stats.events
            lag = sum(stats.lag.values())
            console.print(
                f"[dim]{time.strftime('%H:%M:%S')}[/] {stats.events:,} events, {stats.rows_out:,} rows out, "
                f"lag {lag:,}, watermark {stats.watermark or '-'}",
                highlight=False,
            )

    console.print(f"Streaming {model} (Ctrl-C stops after the batch in progress commits)")
    settings = StreamSettings(batch_size, max_wait, stop_when_idle, compact_every)
    latest: list[StreamStats] = []

    def on_commit(stats: StreamStats) -> None:
        latest[:] = [stats]
        report(stats)

    try:
        result = workspace.stream(model, env=env, settings=settings, stop=stop, on_commit=on_commit)
    except BaseException as err:
        if latest:  # it ran: say it ended, and why, so `gristmill streams` does not call it dead
            reason = getattr(err, "message", None) or type(err).__name__
            report(latest[0], final=True, error=None if isinstance(err, KeyboardInterrupt) else reason)
        raise
    report(result, final=True)
    console.print(
        Text(
            f"Stopped {model}: {result.events:,} events in {result.batches:,} batches, "
            f"{result.rows_out:,} rows out, {result.late:,} late, {result.rejected:,} rejected",
            style="bold green",
        )
    )


@app.command()
def streams(
    project: ProjectOpt = Path("."),
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"Also the processes not running whose last word is over {RETENTION_DAYS} days old.",
        ),
    ] = False,
) -> None:
    """The stream processes of this project: state (running, stopped, failed, dead: killed
    without a word, or stalled: silent but its pid runs), throughput, lag per partition,
    watermark, late and rejected messages."""
    workspace = _workspace(project)
    found = workspace.streams(everything=all_)
    if not found:
        everything = workspace.streams()
        if everything:
            console.print(
                f"No stream ran in the last {RETENTION_DAYS} days ({len(everything)} older: --all shows them)"
            )
        else:
            console.print("No streams yet: gristmill stream MODEL")
        return
    table = Table(show_edge=False)
    columns = ("model", "pid", "state", "events", "ev/s", "rows out", "late", "rejected", "lag", "watermark")
    for column in columns:
        table.add_column(column, justify="right" if column not in ("model", "state", "watermark") else "left")
    for status in found:
        lag = status.get("lag") or {}
        table.add_row(
            status["model"],
            str(status["pid"]),
            Text(status["state"], style=_STATE_STYLES.get(status["state"], "")),
            f"{status['events']:,}",
            f"{status.get('events_per_second', 0):,.0f}",
            f"{status['rows_out']:,}",
            f"{status['late']:,}",
            Text(f"{status['rejected']:,}", style="red" if status["rejected"] else ""),
            ", ".join(f"{p}={n}" for p, n in sorted(lag.items())) or "0",
            str(status.get("watermark") or "-"),
        )
    console.print(table)
    for status in found:
        if status["state"] == "failed":
            who = f"{status['model']} (pid {status['pid']})"
            console.print(f"[red]{escape(who)} failed:[/] {escape(str(status['error']))}", highlight=False)


_STATE_STYLES = {
    "running": "green",
    "stopped": "dim",
    "failed": "red",
    "dead": "bold red",
    "stalled": "yellow",
}
