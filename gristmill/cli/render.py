"""Rich rendering of plans, run results, assets, history and query results."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gristmill.plan import Plan
from gristmill.runtime import RunResult
from gristmill.state import RunRecord, StepRecord
from gristmill.workspace import AssetInfo

STATUS_STYLE = {
    "success": "green",
    "skipped": "dim",
    "failed": "bold red",
    "upstream_failed": "yellow",
    "running": "cyan",
}


def plan_table(plan: Plan) -> Table:
    table = Table(title="Plan", title_justify="left", show_edge=False)
    for column in ("asset", "kind", "action", "why"):
        table.add_column(column)
    for step in plan.steps:
        style = "bold" if step.action == "build" else "dim"
        table.add_row(step.name, step.asset.kind, Text(step.action, style=style), step.reason)
    return table


def run_table(result: RunResult) -> Table:
    table = Table(title=f"Run {result.run_id}", title_justify="left", show_edge=False)
    for column, justify in (
        ("asset", "left"),
        ("kind", "left"),
        ("status", "left"),
        ("rows", "right"),
        ("seconds", "right"),
        ("checks", "right"),
        ("why", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in result.steps:
        passed = sum(c.passed for c in step.checks)
        checks = f"{passed}/{len(step.checks)}" if step.checks else ""
        table.add_row(
            step.asset,
            step.kind,
            Text(step.status, style=STATUS_STYLE.get(step.status, "")),
            "" if step.rows is None else f"{step.rows:,}",
            f"{step.seconds:.2f}" if step.status in ("success", "failed") else "",
            checks,
            step.reason,
        )
    return table


def summary_line(result: RunResult) -> Text:
    s = result.summary()
    parts = [f"{s['built']} built", f"{s['skipped']} skipped"]
    if s["failed"]:
        parts.append(f"{s['failed']} failed")
    if s["not_run"]:
        parts.append(f"{s['not_run']} not run")
    parts.append(f"{s['rows']:,} rows")
    if s.get("quarantined"):
        parts.append(f"{s['quarantined']:,} quarantined")
    if s.get("discarded"):
        parts.append(f"{s['discarded']:,} discarded")
    checks = s["checks_passed"] + s["checks_failed"]
    parts.append(f"{s['checks_passed']}/{checks} checks passed")
    parts.append(f"{s['seconds']:.2f} s")
    return Text(
        ("OK  " if result.ok else "FAILED  ") + ", ".join(parts),
        style="bold green" if result.ok else "bold red",
    )


def failures(result: RunResult, console: Console) -> None:
    for step in result.steps:
        for event in step.load.events if step.load else ():
            console.print(Text(f"~ {event}", style="cyan"))
        if step.error:
            console.print(Text(f"\n✗ {step.asset}", style="bold red"))
            console.print(Text(step.error))
        for check in step.checks:
            if not check.passed and check.check.severity == "warn":
                console.print(
                    Text(
                        f"! {step.asset}: {check.check.name} warns on {_rows(check.failures)} "
                        f"({check.check.location})",
                        style="yellow",
                    )
                )


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def assets_table(infos: list[AssetInfo]) -> Table:
    table = Table(show_edge=False)
    for column, justify in (
        ("asset", "left"),
        ("kind", "left"),
        ("rows", "right"),
        ("built", "left"),
        ("last run", "left"),
        ("reads", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        status = "" if info.last_status is None else f"#{info.last_run} {info.last_status}"
        table.add_row(
            info.name,
            info.kind,
            "" if info.rows is None else f"{info.rows:,}",
            info.built_at or Text("never", style="dim"),
            Text(status, style=STATUS_STYLE.get(info.last_status or "", "")),
            ", ".join(info.upstream),
        )
    return table


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(show_edge=False)
    for column, justify in (
        ("run", "right"),
        ("started", "left"),
        ("status", "left"),
        ("seconds", "right"),
        ("built", "right"),
        ("skipped", "right"),
        ("failed", "right"),
        ("selection", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for run in runs:
        s = run.summary
        table.add_row(
            str(run.run_id),
            run.started_at.replace("T", " ")[:19],
            Text(run.status, style=STATUS_STYLE.get(run.status, "")),
            "" if run.seconds is None else f"{run.seconds:.2f}",
            str(s.get("built", "")),
            str(s.get("skipped", "")),
            str(s.get("failed", "")),
            run.selection or "(all)",
        )
    return table


def steps_table(steps: list[StepRecord]) -> Table:
    table = Table(show_edge=False)
    for column in ("asset", "kind", "status", "rows", "seconds", "why / error"):
        table.add_column(column)
    for step in steps:
        table.add_row(
            step.asset,
            step.kind,
            Text(step.status, style=STATUS_STYLE.get(step.status, "")),
            "" if step.rows is None else f"{step.rows:,}",
            "" if step.seconds is None else f"{step.seconds:.2f}",
            step.error or step.reason,
        )
    return table


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, (int, float, str, bool, type(None), list, dict)) else str(value)


def arrow_as(result: pa.Table, fmt: str) -> str | Table:
    rows = result.to_pylist()  # a query result printed for a person; bulk export belongs to the engine
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.column_names)
        writer.writerows([_plain(v) for v in row.values()] for row in rows)
        return out.getvalue()
    if fmt == "json":
        return json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=2, default=str)
    table = Table(show_edge=False)
    for name, dtype in zip(result.column_names, result.schema.types, strict=True):
        numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*("NULL" if v is None else str(_plain(v)) for v in row.values()))
    return table
