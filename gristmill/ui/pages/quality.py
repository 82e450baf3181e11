"""Quality: every asset's checks over its latest runs (a pass / warn / fail timeline per asset,
filterable by asset and status), the latest failures with their sample rows, each linking to its
run and its asset; anomaly checks with their metric over time inside the baseline band the check
judged it against; quarantine tables (``<asset>__quarantine``) with their rows and reasons.

Check results and metrics come from the run history (``quality_history``); quarantined rows from
the published lake of the served environment (read-only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from sqlglot import exp

from gristmill.errors import ConfigError, GristmillError
from gristmill.plan.planner import view_schema
from gristmill.project.checks import ANOMALY_METRICS
from gristmill.ui.pages.quality_charts import band_chart, band_points, check_timeline

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.state import CheckRecord, MetricRecord
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

STATUSES = ("pass", "warn", "fail", "error")
RUNS = 30
FAILURES = 50
QUARANTINE_ROWS = 20
MAX_CELL = 120
QUARANTINE = "__quarantine"


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def failure_rows(checks: Sequence[CheckRecord]) -> list[dict[str, Any]]:
    """Checks that did not pass, newest first, each with its sample rows as a small table."""
    found = []
    for check in sorted(checks, key=lambda c: (-c.run_id, c.asset, c.check)):
        if check.status == "pass":
            continue
        columns = list(dict.fromkeys(k for row in check.samples for k in row))
        rows = [[_cell(row.get(c)) for c in columns] for row in check.samples]
        found.append({"check": check, "columns": columns, "rows": rows})
    return found[:FAILURES]


def anomalies(
    services: UiServices, assets: Sequence[str], metrics: Sequence[MetricRecord]
) -> list[dict[str, Any]]:
    """Each anomaly check of these assets with its metric's history and baseline band."""
    found = []
    graph = services.workspace.graph
    for name in assets:
        for spec in graph.assets[name].checks:
            if spec.kind != "anomaly":
                continue
            metric = ANOMALY_METRICS.get(spec.params["metric"], spec.params["metric"])
            column = spec.columns[0] if spec.columns else ""
            series = [
                m
                for m in metrics
                if m.asset == name and m.metric == metric and (not column or m.column == column)
            ]
            points = band_points(series, spec.params, metric)
            label = f"{spec.params['metric']}{f'({column})' if column else ''}"
            found.append(
                {
                    "asset": name,
                    "check": spec.name,
                    "label": label,
                    "points": len(points),
                    "flagged": sum(1 for p in points if p["flagged"]),
                    "latest": points[-1] if points else None,
                    "chart": band_chart(points, f"{name} · {label}"),
                }
            )
    return found


def quarantine_tables(services: UiServices, assets: Sequence[str]) -> list[dict[str, Any]]:
    """The ``<asset>__quarantine`` tables of these assets that exist in the served environment:
    rows per reason and the latest rows, each with its run."""
    workspace, env = services.workspace, services.env
    listing = (
        exp.select("table_schema", "table_name")
        .from_(exp.table_("tables", db="information_schema"))
        # "_" matches any character in LIKE: a near miss is dropped by the exact lookup below.
        .where(exp.column("table_name").like(exp.Literal.string(f"%{QUARANTINE}")))
    )
    try:
        present = {
            (r["table_schema"], r["table_name"])
            for r in workspace.query(listing.sql("duckdb"), env).to_pylist()
        }
    except GristmillError:
        return []  # nothing published yet
    found = []
    for name in assets:
        schema, table = name.split(".", 1)
        asset = workspace.graph.assets[name]
        home = view_schema(schema, env) if asset.model is not None else schema
        if (home, table + QUARANTINE) not in present:
            continue
        found.append(_quarantine_of(services, schema, table))
    return found


def _quarantine_of(services: UiServices, schema: str, table: str) -> dict[str, Any]:
    source = exp.table_(table + QUARANTINE, db=schema, quoted=True)
    run, reason, record = (exp.column(c, quoted=True) for c in ("_gm_run_id", "_gm_reason", "_gm_record"))
    counts = (
        exp.select(run.copy(), reason.copy(), exp.alias_(exp.Count(this=exp.Star()), "n"))
        .from_(source.copy())
        .group_by(run.copy(), reason.copy())
        .order_by(exp.Ordered(this=run.copy(), desc=True))
    )
    latest = (
        exp.select(run.copy(), reason.copy(), record.copy())
        .from_(source.copy())
        .order_by(exp.Ordered(this=run.copy(), desc=True))
        .limit(QUARANTINE_ROWS)
    )
    query = services.workspace.query
    reasons = query(counts.sql("duckdb"), services.env).to_pylist()
    rows = query(latest.sql("duckdb"), services.env).to_pylist()
    return {
        "asset": f"{schema}.{table}",
        "table": f"{schema}.{table}{QUARANTINE}",
        "total": sum(int(r["n"]) for r in reasons),
        "reasons": reasons,
        "rows": [
            {"run": r["_gm_run_id"], "reason": r["_gm_reason"], "record": _cell(r["_gm_record"])}
            for r in rows
        ],
    }


def data(services: UiServices, asset: str = "", status: str = "", runs: int = RUNS) -> dict[str, Any]:
    if status and status not in STATUSES:
        raise ConfigError(f"no check status {status!r}", hint=f"one of {', '.join(STATUSES)}")
    graph = services.workspace.graph
    wanted = asset.strip().lower()
    assets = sorted(n for n in graph.assets if wanted in n.lower())
    checks, metrics = services.workspace.quality_history(
        assets, env=services.env, runs=max(1, min(runs, 200))
    )
    by_asset: dict[str, list[CheckRecord]] = {}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    latest = {a: max(c.run_id for c in found) for a, found in by_asset.items()}
    tally = Counter(c.status for a, found in by_asset.items() for c in found if c.run_id == latest[a])
    shown = []
    for name, found in sorted(by_asset.items()):
        if status and not any(c.status == status for c in found):
            continue
        now = [c for c in found if c.run_id == latest[name]]
        shown.append(
            {
                "asset": name,
                "latest_run": latest[name],
                "latest": Counter(c.status for c in now),
                "chart": check_timeline(found),
                "served": name in graph.assets,
            }
        )
    failures = failure_rows([c for c in checks if not status or c.status == status])
    return {
        "filters": {"asset": asset, "status": status, "runs": runs},
        "statuses": STATUSES,
        "assets": shown,
        "tally": tally,
        "failures": failures,
        "anomalies": anomalies(services, assets, metrics),
        "quarantine": quarantine_tables(services, assets),
    }


def mount(router: APIRouter, ui: Ui) -> None:
    def page(request: Request, asset: str = "", status: str = "", runs: int = RUNS) -> Response:
        return ui.show(
            request, "quality.html.j2", lambda: data(ui.services, asset, status, runs), active="quality"
        )

    router.add_api_route("/quality", page, methods=["GET"])
