"""Overview: what needs attention now. Failed runs and checks, assets older than their freshness
policy, runs in progress, streams behind; each links to its detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from gristmill.plan import select
from gristmill.state import open_history

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

RECENT_FAILURES = 10


def data(services: UiServices, now: datetime | None = None) -> dict[str, Any]:
    workspace = services.workspace
    moment = now or datetime.now(UTC)
    failed_runs = workspace.runs(RECENT_FAILURES, status="failed")
    running = workspace.runs(50, status="running")
    checks, _ = workspace.quality_history(list(workspace.graph.assets), env=services.env, runs=1)
    failing = [c for c in checks if c.status != "pass"]
    return {
        "failed_runs": failed_runs,
        "running": running,
        "failed_checks": failing,
        "stale": stale_assets(services, moment),
        "streams": lagging_streams(workspace.streams()),
        "latest": workspace.runs(1),
    }


def stale_assets(services: UiServices, now: datetime) -> list[dict[str, Any]]:
    """Assets a schedule keeps fresh (``freshness = "1h"``) whose last good build is older."""
    project = services.workspace.project
    schedules = [(name, s) for name, s in project.settings.schedules.items() if s.freshness is not None]
    if not schedules:
        return []
    history = open_history(project.path(project.settings.storage.state))
    try:
        current = history.runs.last_success()
    finally:
        history.close()
    stale: list[dict[str, Any]] = []
    for name, schedule in schedules:
        assert schedule.freshness is not None
        limit = schedule.freshness.total_seconds()
        for asset in select(services.workspace.graph, schedule.select, schedule.exclude, compiled=False):
            found = current.get(asset)
            age = None if found is None else (now - datetime.fromisoformat(found[1])).total_seconds()
            if age is None or age > limit:
                stale.append({"asset": asset, "schedule": name, "age": age, "limit": limit})
    return stale


def lagging_streams(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streams with a lag to show (any lag above zero, or a stream that stopped with an error)."""
    shown = []
    for status in statuses:
        lag = status.get("lag") or status.get("consumer_lag")
        if lag or status.get("error") or status.get("state") == "failed":
            shown.append({**status, "lag": lag})
    return shown


def mount(router: APIRouter, ui: Ui) -> None:
    def overview(request: Request) -> Response:
        return ui.show(request, "overview.html.j2", lambda: data(ui.services), active="overview")

    router.add_api_route("/", overview, methods=["GET"])
