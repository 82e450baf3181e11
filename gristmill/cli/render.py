"""Rich rendering of plans, run results, assets, history and query results."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used, the runtime by the verbs
    import pyarrow as pa

    from gristmill.workspace.types import (
        AssetInfo,
        CheckResult,
        CheckRun,
        Lineage,
        Node,
        Plan,
        RunRecord,
        RunResult,
        StepRecord,
        UnitTestResult,
        UnitTestRun,
    )

STATUS_STYLE = {
    "success": "green",
    "skipped": "dim",
    "switched": "cyan",
    "failed": "bold red",
    "upstream_failed": "yellow",
    "cancelled": "magenta",
    "running": "cyan",
}


CHANGE_STYLE = {
    "added": "green",
    "breaking": "bold red",
    "non-breaking": "yellow",
    "indirect": "cyan",
    "unchanged": "dim",
}


def plan_table(plan: Plan) -> Table:
    title = "Plan" if plan.env == "prod" else f"Plan for {plan.env}"
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in ("asset", "kind", "change", "action", "why"):
        table.add_column(column)
    for step in plan.steps:
        style = "bold" if step.action == "build" else "" if step.action == "switch" else "dim"
        change = "" if step.asset.kind == "source" else step.change
        table.add_row(
            step.name,
            step.asset.kind,
            Text(change, style=CHANGE_STYLE.get(change, "")),
            Text(step.action, style=style),
            step.reason,
        )
    for name in plan.removed:
        table.add_row(name, "", Text("removed", style="red"), "drop view", "no longer in the project")
    return table


def plan_summary(plan: Plan) -> str:
    parts = [f"{len(plan.builds)} to build"]
    if plan.switches:
        parts.append(f"{len(plan.switches)} to switch without building")
    parts.append(f"{len(plan.skips)} unchanged")
    if plan.removed:
        parts.append(f"{len(plan.removed)} removed")
    return ", ".join(parts)


def lineage_trees(lineage: Lineage, *, upstream: bool, downstream: bool) -> Group:
    def add(tree: Tree, nodes: tuple[Node, ...], empty: str | None = None) -> None:
        for node in nodes:
            add(tree.add(node.label), node.children)
        if not nodes and empty:
            tree.add(f"[dim]{empty}[/]")

    trees: list[Tree] = []
    target = f"{lineage.asset}.{lineage.column}" if lineage.column else lineage.asset
    for wanted, nodes, verb, empty in (
        (upstream, lineage.upstream, "reads", "no other column" if lineage.column else "nothing"),
        (downstream, lineage.downstream, "is read by", "no model yet"),
    ):
        if wanted:
            tree = Tree(f"[bold]{target}[/] {verb}")
            # For one column the tree's root is the column itself: show what hangs below it.
            add(tree, (nodes[0].children if nodes else ()) if lineage.column else nodes, empty)
            trees.append(tree)
    return Group(*trees)


SHOW_SKIPPED_UP_TO = 30
"""A run of a large project lists only what it did; `plan` and `history N` list every step."""


def run_table(result: RunResult) -> Table:
    table = Table(title=f"Run {result.run_id}", title_justify="left", show_edge=False)
    quiet = len(result.steps) > SHOW_SKIPPED_UP_TO
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
    hidden = 0
    for step in result.steps:
        if quiet and step.status == "skipped":
            hidden += 1
            continue
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
    if hidden:
        table.caption = (
            f"{hidden:,} unchanged assets not listed (`gristmill history {result.run_id}` lists every step)"
        )
        table.caption_justify = "left"
    return table


def summary_line(result: RunResult) -> Text:
    s = result.summary()
    parts = [f"{s['built']} built"]
    if s.get("switched"):
        parts.append(f"{s['switched']} switched")
    parts.append(f"{s['skipped']} skipped")
    if s["failed"]:
        parts.append(f"{s['failed']} failed")
    if s["not_run"]:
        parts.append(f"{s['not_run']} not run")
    if s.get("cancelled"):
        parts.append(f"{s['cancelled']} cancelled")
    if s.get("retries"):
        parts.append(f"{s['retries']} retried")
    parts.append(f"{s['rows']:,} rows")
    if s.get("quarantined"):
        parts.append(f"{s['quarantined']:,} quarantined")
    if s.get("discarded"):
        parts.append(f"{s['discarded']:,} discarded")
    checks = s["checks_passed"] + s["checks_failed"]
    if checks:
        parts.append(f"{s['checks_passed']}/{checks} checks passed")
    parts.append(f"{s['seconds']:.2f} s")
    head = "OK  " if result.ok else ("CANCELLED  " if result.status == "cancelled" else "FAILED  ")
    return Text(
        head + ", ".join(parts),
        style="bold green" if result.ok else "bold red",
    )


def failures(result: RunResult, console: Console, *, only_failures: bool = False) -> None:
    """Failed steps and checks with their failing rows; unless ``only_failures`` (``--quiet``),
    also load events and warnings."""
    for step in result.steps:
        for event in step.load.events if step.load and not only_failures else ():
            console.print(Text(f"~ {event}", style="cyan"))
        for event in step.events:  # a model build's: late rows, unknown members, columns added
            console.print(Text(f"~ {event}", style="yellow" if "not loaded" in event else "cyan"))
        if step.error:
            console.print(Text(f"\n✗ {step.asset}", style="bold red"))
            console.print(Text(step.error))
        for check in step.checks:
            if only_failures and (check.passed or check.check.severity != "error"):
                continue
            if not check.passed and check.check.kind == "anomaly":
                style = "red" if check.check.severity == "error" else "yellow"
                console.print(Text(f"! {step.asset}: {check.detail} ({check.check.location})", style=style))
                continue
            if not check.passed and check.check.severity == "warn":
                console.print(
                    Text(
                        f"! {step.asset}: {check.check.name} warns on {_rows(check.failures)} "
                        f"({check.check.location})",
                        style="yellow",
                    )
                )
            if not check.passed and check.samples:
                console.print(_samples_table(check))


def check_table(run: CheckRun, *, only_failures: bool = False) -> Table:
    """Every check that did not pass, and a line per asset whose checks all passed (every check
    when there are few); with ``only_failures``, the blocking failures alone."""
    table = Table(show_edge=False, header_style="bold")
    detailed = any(c.detail for c in run.results) or any(a.status != "checked" for a in run.assets)
    for column in ("asset", "check", "severity", "result", *(("detail",) if detailed else ())):
        table.add_column(column)
    few = len(run.results) <= 40 and not only_failures
    for outcome in run.assets:
        if only_failures and outcome.status == "checked":
            blocking = [c for c in outcome.checks if not c.passed and c.check.severity == "error"]
            for check in blocking:
                first: list[str | Text] = [outcome.asset, check.check.name, check.check.severity]
                table.add_row(*first, _verdict(check), *([check.detail or ""] if detailed else []))
            continue
        if only_failures and outcome.status == "not_built":
            continue
        if outcome.status != "checked":
            note = "not built in this environment" if outcome.status == "not_built" else (outcome.error or "")
            style = "dim" if outcome.status == "not_built" else "red"
            table.add_row(outcome.asset, "", "", Text(outcome.status.replace("_", " "), style=style), note)
            continue
        shown = [c for c in outcome.checks if few or not c.passed]
        for check in shown:
            cells: list[str | Text] = [outcome.asset, check.check.name, check.check.severity, _verdict(check)]
            table.add_row(*cells, *([check.detail or ""] if detailed else []))
        if not few and len(shown) < len(outcome.checks):
            passed = len(outcome.checks) - len(shown)
            table.add_row(outcome.asset, f"{passed} other checks", "", Text("pass", style="green"))
    return table


def _verdict(check: CheckResult) -> Text:
    if check.passed:
        return Text("pass", style="green")
    if check.check.kind == "anomaly":
        return Text("anomaly", style="red" if check.check.severity == "error" else "yellow")
    label = f"{check.failures:,} failing"
    return Text(label, style="red" if check.check.severity == "error" else "yellow")


def check_failures(run: CheckRun, console: Console, *, only_failures: bool = False) -> None:
    for outcome in run.assets:
        for check in outcome.checks:
            if only_failures and check.check.severity != "error":
                continue
            if not check.passed and check.samples and check.check.kind != "anomaly":
                console.print(_samples_table(check))


def check_summary(run: CheckRun, *, allow_unbuilt: bool = False) -> Text:
    s = run.summary()
    total = s["checks_passed"] + s["checks_failed"] + s["checks_warned"]
    assets = f"{s['assets']} asset" + ("" if s["assets"] == 1 else "s")
    parts = [assets, f"{s['checks_passed']}/{total} checks passed"]
    if s["checks_failed"]:
        parts.append(f"{s['checks_failed']} failed")
    if s["checks_warned"]:
        parts.append(f"{s['checks_warned']} warned")
    if s["anomalies"]:
        parts.append(f"{s['anomalies']} anomal{'y' if s['anomalies'] == 1 else 'ies'}")
    if s["not_built"]:
        parts.append(f"{s['not_built']} not built")
    if s["errors"]:
        parts.append(f"{s['errors']} could not be checked")
    parts.append(f"{s['seconds']:.2f} s")
    if not run.ok:
        return Text("FAILED  " + ", ".join(parts), style="bold red")
    if s["not_built"]:
        # Never built: their checks did not run, so they are not known to be healthy.
        head = "WARN  " if allow_unbuilt else "INCOMPLETE  "
        return Text(head + ", ".join(parts), style="bold yellow" if allow_unbuilt else "bold red")
    return Text("OK  " + ", ".join(parts), style="bold green")


def _samples_table(check: CheckResult) -> Group:
    shown = len(check.samples)
    more = f", {check.failures - shown:,} more" if check.failures > shown else ""
    title = Text(f"  {check.check.name}: {shown} of the failing rows{more}", style="dim")
    table = Table(show_edge=False, padding=(0, 1, 0, 2))
    columns = list(check.samples[0])
    for column in columns:
        table.add_column(column)
    for row in check.samples:
        table.add_row(*("NULL" if row[c] is None else str(row[c]) for c in columns))
    return Group(title, table)


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
    owned = any(info.owner for info in infos)
    if owned:
        table.add_column("owner")
    for info in infos:
        status = "" if info.last_status is None else f"#{info.last_run} {info.last_status}"
        table.add_row(
            info.name,
            info.kind,
            "" if info.rows is None else f"{info.rows:,}",
            info.built_at or Text("never", style="dim"),
            Text(status, style=STATUS_STYLE.get(info.last_status or "", "")),
            ", ".join(info.upstream),
            *([info.owner or ""] if owned else []),
        )
    return table


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(show_edge=False)
    for column, justify in (
        ("run", "right"),
        ("command", "left"),
        ("started", "left"),
        ("status", "left"),
        ("seconds", "right"),
        ("built", "right"),
        ("skipped", "right"),
        ("failed", "right"),
        ("checks", "right"),
        ("selection", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for run in runs:
        s = run.summary
        passed, failed = int(s.get("checks_passed", 0)), int(s.get("checks_failed", 0))
        total = passed + failed + int(s.get("checks_warned", 0))
        table.add_row(
            str(run.run_id),
            run.command,
            run.started_at.replace("T", " ")[:19],
            Text(run.status, style=STATUS_STYLE.get(run.status, "")),
            "" if run.seconds is None else f"{run.seconds:.2f}",
            str(s.get("built", "")),
            str(s.get("skipped", "")),
            str(s.get("failed", "")),
            f"{passed}/{total}" if total else "",
            run.selection or "(all)",
        )
    return table


def steps_table(steps: list[StepRecord]) -> Table:
    table = Table(show_edge=False)
    for column in ("asset", "kind", "status", "rows", "seconds", "why / error"):
        table.add_column(column)
    retried = {s.asset for s in steps if s.attempt > 1}  # its attempts are told apart
    for step in steps:
        attempt = f" (attempt {step.attempt})" if step.asset in retried else ""
        table.add_row(
            step.asset,
            step.kind,
            Text(step.status + attempt, style=STATUS_STYLE.get(step.status, "")),
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
    import pyarrow as pa

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


# --- gristmill test -------------------------------------------------------------------------------

TEST_STYLE = {"passed": "green", "failed": "bold red", "error": "bold red", "skipped": "dim"}
SHOWN_ROWS = 20


def unit_tests_table(run: UnitTestRun) -> Table:
    table = Table(title="Unit tests", title_justify="left", show_edge=False)
    table.add_column("test", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("status")
    table.add_column("expected", justify="right")
    table.add_column("returned", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("about", ratio=1)
    for result in run.results:
        model = result.model + (" (incremental)" if result.rendering == "incremental" else "")
        table.add_row(
            result.name,
            model,
            Text(result.status, style=TEST_STYLE[result.status]),
            "" if result.expected_rows is None else f"{result.expected_rows:,}",
            "" if result.returned_rows is None else f"{result.returned_rows:,}",
            f"{result.seconds:.2f}",
            result.description or "",
        )
    return table


def unit_test_details(run: UnitTestRun, console: Console) -> None:
    """Warnings, then for each test that did not pass: where, why, and the rows that differ."""
    for result in run.results:
        for warning in result.warnings:
            console.print(Text(f"! {result.name}: {warning}", style="yellow"))
    for result in run.results:
        if result.status == "skipped":
            console.print(Text(f"- {result.name}: {result.message}", style="dim"))
        elif result.status in ("failed", "error"):
            console.print(Text(f"\n✗ {result.name} ({result.location}, {result.model})", style="bold red"))
            console.print(Text(result.message))
            if result.missing or result.unexpected:
                console.print(unit_test_diff(result))
            if result.misordered:
                console.print(unit_test_order(result))


def _cell(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, list | dict):
        return Text(json.dumps(value, default=str))
    return Text(str(_plain(value)))


def unit_test_diff(result: UnitTestResult) -> Table:
    """Expected rows the model did not return (missing) and rows it returned that were not expected."""
    table = Table(show_edge=False)
    table.add_column("")
    for column in result.columns:
        table.add_column(column)
    for label, style, rows in (
        ("missing", "red", result.missing),
        ("unexpected", "yellow", result.unexpected),
    ):
        for row in rows[:SHOWN_ROWS]:
            table.add_row(Text(label, style=style), *(_cell(v) for v in row))
        if len(rows) > SHOWN_ROWS:
            table.add_row(Text(f"… {len(rows) - SHOWN_ROWS:,} more {label}", style="dim"))
    return table


def unit_test_order(result: UnitTestResult) -> Table:
    """ordered: true: the rows at the positions where the order differs, expected above returned."""
    table = Table(show_edge=False)
    table.add_column("row", justify="right")
    table.add_column("")
    for column in result.columns:
        table.add_column(column)
    for position, expected, returned in result.misordered[:SHOWN_ROWS]:
        table.add_row(str(position + 1), Text("expected", style="red"), *(_cell(v) for v in expected))
        table.add_row("", Text("returned", style="yellow"), *(_cell(v) for v in returned))
    return table


def unit_tests_summary(run: UnitTestRun) -> Text:
    s = run.summary()
    parts = [f"{s['passed']} passed"]
    parts += [f"{s[status]} {status}" for status in ("failed", "error", "skipped") if s[status]]
    parts.append(f"{s['seconds']:.2f} s")
    return Text(
        ("OK  " if run.ok else "FAILED  ") + ", ".join(parts), style="bold green" if run.ok else "bold red"
    )
