"""``gristmill backfill`` and ``gristmill backfills``: build time-range models over a range of
intervals, a chunk of intervals per run, resumably; and show what each backfill did, interval by
interval (grouped into ranges, as a backfill covers thousands of hours)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gristmill.cli.common import EnvOpt, ProjectOpt, SelectOpt, TargetOpt, app, console, say_target
from gristmill.cli.common import open_workspace as _workspace
from gristmill.cli.common import warn as _warn
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.workspace.types import (
        BackfillRecord,
        BackfillResult,
        Event,
        PartitionRecord,
        Plan,
        StepResult,
    )

_PARTITION_STYLE = {"pending": "yellow", "interrupted": "magenta"}


def _style(status: str) -> str:
    from gristmill.cli.render import STATUS_STYLE  # imported when a table is drawn, not for --help

    return _PARTITION_STYLE.get(status) or STATUS_STYLE.get(status, "")


ORDER = ("success", "skipped", "failed", "pending")


def _moment(option: str, text: str, *, end: bool = False) -> datetime:
    """An ISO date or timestamp in UTC. A date given as the end includes that day: ``--to
    2024-03-31`` ends at April 1st, 00:00; a timestamp is the (excluded) end itself."""
    from gristmill.workspace.types import parse_moment

    try:
        moment = parse_moment(text)
    except ValueError as err:
        raise ConfigError(f"{option}: {err}", hint="e.g. --from 2024-01-01 --to 2024-03-31") from None
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return moment
    return moment + timedelta(days=1) if end else moment


def _label(moment: datetime, unit: str) -> str:
    return moment.strftime({"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}[unit])


def _windows(plan: Plan) -> list[tuple[str, str]]:
    """The (asset, "N days: first..last") a run of a backfill builds, from its plan."""
    from gristmill.workspace.types import describe, shift

    found: list[tuple[str, str]] = []
    for step in plan.steps:
        if step.partitions is not None:
            found.append(
                (
                    step.name,
                    "partition" + "s" * (len(step.partitions) != 1) + " " + ", ".join(step.partitions),
                )
            )
        if step.window is None or step.asset.model is None:
            continue
        unit = step.asset.model.interval
        at, intervals = step.window[0], []
        while at < step.window[1]:
            intervals.append((at, shift(at, unit)))
            at = shift(at, unit)
        found.append((step.name, describe(intervals, unit)))
    return found


@app.command()
def backfill(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    select: SelectOpt = [],  # noqa: B006 - typer reads defaults, never mutates them
    from_: Annotated[
        str | None, typer.Option("--from", help="First day (or timestamp) to build, e.g. 2024-01-01.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Last day to build, included (a timestamp is excluded); default: up to now.",
        ),
    ] = None,
    reprocess: Annotated[
        str,
        typer.Option(
            help="missing: intervals not built yet; failed: also those that failed in earlier "
            "backfills; all: every interval again (restated)."
        ),
    ] = "missing",
    chunk: Annotated[
        int | None,
        typer.Option(help="Intervals per run (default: 24 hours, 7 days or 1 month).", min=1),
    ] = None,
    env: EnvOpt = "prod",
    resume: Annotated[
        int | None,
        typer.Option(help="Continue this backfill: its pending and failed intervals (see `backfills`)."),
    ] = None,
    partition: Annotated[
        list[str],
        typer.Option(
            help="Models with partition_by: backfill only this declared value (repeatable; "
            "default: all of them)."
        ),
    ] = [],  # noqa: B006
    wait: Annotated[float, typer.Option(help="Seconds to wait if another run holds the project.")] = 0.0,
) -> None:
    """Build the selected partitioned models, a chunk of partitions per run: time-range models
    (incremental with time: and interval:) for the intervals from --from to --to, models with
    partition_by for their declared values. Every partition's outcome is kept: a failed, cancelled
    or killed backfill is resumed with --resume ID. Exits 1 when a partition failed."""
    from gristmill.workspace.types import RunFinished, RunStarted

    if resume is not None and (from_ or to or select or partition):
        raise ConfigError(
            "--resume continues a backfill with its own selection and range",
            hint=f"drop -s/--from/--to, or start a new backfill without --resume {resume}",
        )
    start = _moment("--from", from_) if from_ else None
    end = _moment("--to", to, end=True) if to else datetime.now(UTC) if start else None
    workspace = _workspace(project, target=target)
    _warn(workspace.graph.warnings)
    say_target(workspace)
    plans: dict[int, list[tuple[str, str]]] = {}
    assets: dict[int, list[str]] = {}
    started: list[str] = []

    def listen(event: Event) -> None:
        if isinstance(event, RunStarted):
            started.append(event.command.removeprefix("backfill "))
            plans[event.run_id] = _windows(event.plan)
            assets[event.run_id] = [s.name for s in event.plan.steps if s.action == "build"]
        elif isinstance(event, RunFinished):
            _chunk_line(event.result.run_id, event.status, plans, assets, event.result.steps)

    try:
        result = workspace.backfill(
            select,
            start,
            end,
            reprocess=reprocess,
            chunk=chunk,
            env=env,
            resume=resume,
            wait=wait,
            listener=listen,
            partitions=[p for given in partition for p in given.split(",") if p] or None,
        )
    except KeyboardInterrupt:
        if started:
            console.print(f"[bold red]Backfill {started[-1]} cancelled[/]: the run in progress rolled back")
            console.print(f"[dim]resume: gristmill backfill --resume {started[-1]}[/]")
        raise typer.Exit(130) from None
    _print_outcome(result)
    if not result.ok:
        console.print(
            f"[dim]details: gristmill backfills {result.backfill_id}; "
            f"{'fix the cause, then ' if result.status == 'failed' else ''}"
            f"resume: gristmill backfill --resume {result.backfill_id}[/]"
        )
        raise typer.Exit(130 if result.status == "cancelled" else 1)


def _print_outcome(result: BackfillResult) -> None:
    counts = result.counts
    parts = [f"{counts[s]} {'built' if s == 'success' else s}" for s in ORDER if counts.get(s)]
    parts += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in ORDER]
    runs = len(result.runs)
    line = (
        f"Backfill {result.backfill_id} {result.status}: "
        + (", ".join(parts) or "no partitions")
        + f" in {runs} run{'s' * (runs != 1)}"
    )
    if not result.runs and result.ok:
        line += " (nothing to do: every partition is built; --reprocess all builds them again)"
    console.print(Text(line, style="bold green" if result.ok else "bold red"))


def _chunk_line(
    run_id: int,
    status: str,
    plans: dict[int, list[tuple[str, str]]],
    assets: dict[int, list[str]],
    steps: Sequence[StepResult],
) -> None:
    from gristmill.cli.render import STATUS_STYLE

    style = STATUS_STYLE.get(status, "")
    windows = plans.get(run_id, [])
    if windows:
        spans = sorted({w for _, w in windows})
        what = f"{', '.join(dict.fromkeys(a for a, _ in windows))}  {'; '.join(spans)}"
    else:
        what = ", ".join(assets.get(run_id, [])) or "nothing to build"
    console.print(f"  run {run_id:<5} {escape(what)}  [{style}]{status}[/]", highlight=False)
    for step in steps:
        if step.error and step.status != "success":
            first = step.error.splitlines()[0]
            console.print(f"    [red]{escape(step.asset)}: {escape(first[:200])}[/]", highlight=False)


@app.command()
def backfills(
    backfill_id: Annotated[int | None, typer.Argument(help="Show this backfill's intervals.")] = None,
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent backfills to list.")] = 20,
) -> None:
    """List recent backfills, or the intervals of one: each asset's runs of intervals with the same
    status, the run that built them and the error of those that failed."""
    workspace = _workspace(project, target=target)
    found = workspace.backfills(backfill_id, limit=limit)
    if backfill_id is None:
        if not found:
            console.print("No backfills yet: gristmill backfill -s MODEL --from DATE --to DATE")
            return
        console.print(backfills_table([b.record for b in found]))
        return
    record = found[0].record
    console.print(
        f"Backfill {record.backfill_id}  [bold]{escape(record.selection or '(all)')}[/]  "
        f"{_range(record)}  [{_style(record.status)}]{record.status}[/]  "
        f"[dim]created {record.created_at.replace('T', ' ')[:19]}[/]",
        highlight=False,
    )
    units = {
        name: "value" if a.model.partition_by else a.model.interval
        for name, a in workspace.graph.assets.items()
        if a.model is not None
    }
    console.print(partitions_table(found[0].partitions, units))


def backfills_table(records: Sequence[BackfillRecord]) -> Table:
    table = Table(show_edge=False)
    for column in ("id", "selection", "range", "status", "partitions", "created"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for record in records:
        table.add_row(
            str(record.backfill_id),
            record.selection or "(all)",
            _range(record),
            Text(record.status, style=_style(record.status)),
            _counts(record.partitions),
            record.created_at.replace("T", " ")[:19],
        )
    return table


def _counts(counts: dict[str, int]) -> Text:
    text = Text()
    for status in [*ORDER, *sorted(set(counts) - set(ORDER))]:
        if counts.get(status):
            if text:
                text.append(", ")
            text.append(f"{counts[status]} {status}", style=_style(status))
    return text


def _range(record: BackfillRecord) -> str:
    if not record.start or not record.end:
        return "declared values"
    start, end = datetime.fromisoformat(record.start), datetime.fromisoformat(record.end)
    if start.time() == end.time() == datetime.min.time():
        return f"{start:%Y-%m-%d}..{end - timedelta(days=1):%Y-%m-%d}"
    return f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"


def partitions_table(partitions: Sequence[PartitionRecord], units: Mapping[str, str] | None = None) -> Table:
    """One row per stretch of neighbouring intervals of an asset with the same status and error;
    ``units`` (asset -> hour, day, month, or value for declared values) labels them, else their
    spacing does."""
    table = Table(show_edge=False)
    for column in ("asset", "partitions", "count", "status", "run"):
        table.add_column(column, justify="right" if column in ("count", "run") else "left", no_wrap=True)
    table.add_column("error", overflow="ellipsis", max_width=100)
    by_asset: dict[str, list[PartitionRecord]] = {}
    for part in partitions:
        by_asset.setdefault(part.asset, []).append(part)
    labels = {
        a: (units or {}).get(a) or _unit(sorted(p, key=lambda r: r.partition)) for a, p in by_asset.items()
    }
    for asset, group in _stretches(partitions):
        unit = labels[asset]
        first, last = group[0], group[-1]
        if unit == "value":
            span = ", ".join(p.partition for p in group)
        else:
            span = _label(datetime.fromisoformat(first.partition), unit)
            if last is not first:
                span += f"..{_label(datetime.fromisoformat(last.partition), unit)}"
        runs = sorted({p.run_id for p in group if p.run_id is not None})
        table.add_row(
            asset,
            span,
            str(len(group)),
            Text(first.status, style=_style(first.status)),
            "" if not runs else str(runs[0]) if len(runs) == 1 else f"{runs[0]}-{runs[-1]}",
            Text(first.error.splitlines()[0], no_wrap=True, overflow="ellipsis") if first.error else "",
        )
    return table


def _stretches(partitions: Sequence[PartitionRecord]) -> list[tuple[str, list[PartitionRecord]]]:
    stretches: list[tuple[str, list[PartitionRecord]]] = []
    for part in sorted(partitions, key=lambda p: (p.asset, p.partition)):
        if stretches:
            asset, group = stretches[-1]
            if asset == part.asset and (group[-1].status, group[-1].error) == (part.status, part.error):
                group.append(part)
                continue
        stretches.append((part.asset, [part]))
    return stretches


def _unit(partitions: Sequence[PartitionRecord]) -> str:
    """The interval unit of an asset's partitions, from their spacing (one alone: by its time);
    ``value`` when they are not times (declared values of an asset no longer in the project)."""
    try:
        starts = [datetime.fromisoformat(p.partition) for p in partitions[:2]]
    except ValueError:
        return "value"
    if len(starts) == 2:
        gap = starts[1] - starts[0]
        return "hour" if gap <= timedelta(hours=1) else "day" if gap <= timedelta(days=1) else "month"
    return "day" if starts and starts[0].time() == datetime.min.time() else "hour"
