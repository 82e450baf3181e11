"""``gristmill stream`` runs a stream model continuously; ``gristmill streams`` shows the running
ones (each writes its figures to ``.gristmill/streams/<model>-<pid>.json`` after commits)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from gristmill.cli.app import EnvOpt, ProjectOpt, _warn, _workspace, app, console

if TYPE_CHECKING:
    from gristmill.runtime.streaming import StreamStats


def status_folder(root: Path) -> Path:
    return root / ".gristmill" / "streams"


def read_statuses(root: Path) -> list[dict[str, Any]]:
    """Every stream's last figures, with ``alive`` telling whether its process still runs."""
    found: list[dict[str, Any]] = []
    for path in sorted(status_folder(root).glob("*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being rewritten
        pid = int(status.get("pid", 0))
        try:
            os.kill(pid, 0)
            alive = pid > 0
        except (ProcessLookupError, PermissionError):
            alive = False
        found.append({**status, "alive": alive and not status.get("stopped")})
    return found


@app.command()
def stream(
    model: Annotated[str, typer.Argument(help="The stream model to run (kind: stream).")],
    project: ProjectOpt = Path("."),
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
    from gristmill.runtime.streaming import StreamSettings

    workspace = _workspace(project)
    _warn(workspace.graph.warnings)
    stop = threading.Event()

    def graceful(number: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now, the batch in progress rolls back
        stop.set()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    folder = status_folder(workspace.root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.replace('/', '_')}-{os.getpid()}.json"
    last = [0.0]

    def report(stats: StreamStats, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - last[0] < 1.0:
            return
        last[0] = now
        elapsed = max(time.time() - stats.started_at, 1e-9)
        figures = {**stats.as_dict(), "pid": os.getpid(), "events_per_second": stats.events / elapsed}
        if final:
            figures["stopped"] = True
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(figures, default=str))
        temporary.replace(path)
        if console.is_terminal and not final:
            lag = sum(stats.lag.values())
            console.print(
                f"[dim]{time.strftime('%H:%M:%S')}[/] {stats.events:,} events, {stats.rows_out:,} rows out, "
                f"lag {lag:,}, watermark {stats.watermark or '-'}",
                highlight=False,
            )

    console.print(f"Streaming {model} (Ctrl-C stops after the batch in progress commits)")
    settings = StreamSettings(batch_size, max_wait, stop_when_idle, compact_every)
    result = workspace.stream(model, env=env, settings=settings, stop=stop, on_commit=report)
    report(result, final=True)
    console.print(
        Text(
            f"Stopped {model}: {result.events:,} events in {result.batches:,} batches, "
            f"{result.rows_out:,} rows out, {result.late:,} late, {result.rejected:,} rejected",
            style="bold green",
        )
    )


@app.command()
def streams(project: ProjectOpt = Path(".")) -> None:
    """The stream processes of this project: throughput, lag per partition, watermark, late and
    rejected messages."""
    workspace = _workspace(project)
    found = read_statuses(workspace.root)
    if not found:
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
            Text("running", style="green") if status["alive"] else Text("stopped", style="dim"),
            f"{status['events']:,}",
            f"{status.get('events_per_second', 0):,.0f}",
            f"{status['rows_out']:,}",
            f"{status['late']:,}",
            Text(f"{status['rejected']:,}", style="red" if status["rejected"] else ""),
            ", ".join(f"{p}={n}" for p, n in sorted(lag.items())) or "0",
            str(status.get("watermark") or "-"),
        )
    console.print(table)
